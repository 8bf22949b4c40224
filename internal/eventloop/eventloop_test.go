package eventloop

import (
	"context"
	"errors"
	"testing"
)

// Do returns once the loop has run f; without a loop it returns ctx's error.
func TestDo(t *testing.T) {
	events := make(chan any)
	go func() {
		for ev := range events {
			ev.(Request).F()
		}
	}()
	defer close(events)
	ran := false
	if err := Do(t.Context(), events, func() { ran = true }); err != nil || !ran {
		t.Fatalf("Do: %v, ran %v", err, ran)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Do(ctx, make(chan any), func() {}); !errors.Is(err, context.Canceled) {
		t.Errorf("Do without a loop: %v, want context.Canceled", err)
	}
}
