package chaos

import (
	"context"
	"fmt"
	"io"
	"time"
)

// SoakOptions configure a soak.
type SoakOptions struct {
	Instances int
	Advert    time.Duration
	Duration  time.Duration
	Hogs      int
	VigilBin  string
	Dir       string
	Log       io.Writer
}

// SoakResult is what a soak measured.
type SoakResult struct {
	Options        SoakOptions
	FalseFailovers int
}

// Soak is not written yet.
func Soak(ctx context.Context, o SoakOptions) (*SoakResult, error) {
	return nil, fmt.Errorf("not yet")
}

// WriteSoak prints a soak's figures.
func WriteSoak(w io.Writer, r *SoakResult) {}
