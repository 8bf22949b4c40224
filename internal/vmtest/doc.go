// Package vmtest holds the end-to-end tests that need a kernel this
// project's CI host lacks (IPVS with its connection sync daemon): vigil and
// keepalived 2.2.7 as processes in network namespaces, programming the
// kernel's IP virtual server. scripts/vm-test runs them (every TestKernel*
// test of the tree) inside Debian's kernel under qemu; elsewhere they skip
// through netnstest.IPVS.
package vmtest
