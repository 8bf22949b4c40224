module github.com/vigil-ha/vigil

go 1.26.0

require github.com/vishvananda/netns v0.0.5

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
