module github.com/vigil-ha/vigil

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/vishvananda/netns v0.0.5
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)

require github.com/spf13/pflag v1.0.10
