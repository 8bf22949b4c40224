package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestUndoRunsInReverse(t *testing.T) {
	var u undo
	var got []int
	for i := range 3 {
		u.push(func() { got = append(got, i) })
	}
	u.run()
	u.run() // a second run has nothing left
	if want := []int{2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("undo ran %v, want %v", got, want)
	}
}

func TestGroupStopsAndWaits(t *testing.T) {
	var logs strings.Builder
	g := newGroup(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	ended := make(chan string, 3)
	run := func(name string, err error) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			ended <- name
			return err
		}
	}
	g.Go("a", run("a", nil))
	g.Go("b", run("b", errors.New("boom")))
	stopC := g.Start("c", run("c", nil))
	stopC() // c alone, and waited for
	if got := <-ended; got != "c" {
		t.Fatalf("first to end %q, want c", got)
	}
	g.stop()
	if len(ended) != 2 {
		t.Errorf("%d goroutines ended after stop, want 2 (stop waits)", len(ended))
	}
	if !strings.Contains(logs.String(), "b stopped") || strings.Contains(logs.String(), "a stopped") {
		t.Errorf("log: want only b's error, got:\n%s", logs.String())
	}
}
