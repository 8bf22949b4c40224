// Package textpages gives back to the kernel the pages of the running
// binary's read-only file mappings (its text and rodata): madvise
// MADV_DONTNEED on each, so that only the code and tables the process
// touches afterwards fault back in, as minor faults from the page cache.
//
// A daemon runs much of its code once, at start and at each reload
// (configuration parsing, package initialisation, the first netlink
// dumps), and a few percent of it afterwards; but every page it ever
// touched stays mapped, and resident in VmRSS, until the process exits.
// The kernel also maps the cached pages around each fault in one go
// (fault-around, 64 KiB by default), so a Go binary's text and rodata end
// up nearly all resident: about 13 MB of vigil's at 1,000 VRRP
// instances. After a release, what steady work touches comes back 64 KiB
// at a time too: the collector's walk of the goroutines' stacks reads the
// function tables (pclntab, funcdata) of every function on them, and the
// type descriptors of the heap's objects, scattered over the binary (7.1
// MB stay resident at 1,000 instances, 4.6 MB at 50). When the page cache
// holds the binary in large folios (it was filled by read(): copying it, a
// checksum, a backup, rather than by the faults of exec), a fault maps a
// whole folio and more comes back (9.0 MB at 1,000 instances).
//
// Only private mappings of the executable itself that are not writable
// and hold no anonymous (copy-on-write) pages are released: dropping such
// a page loses nothing, since the file holds the same bytes. A writable
// mapping (.data, .bss), the heap, the stack and a text page a debugger
// has patched with a breakpoint (an anonymous page in a read-only
// mapping) are never touched.
package textpages

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Region is one mapping of the executable that Release may drop.
type Region struct {
	Start, End uint64 // virtual addresses, End exclusive
	Perms      string // as /proc/PID/maps shows them, e.g. "r-xp"
	Rss        uint64 // resident bytes when read
}

// Size is the region's length in bytes.
func (r Region) Size() uint64 { return r.End - r.Start }

// File identifies the executable as /proc/PID/maps does: the device's
// major and minor numbers and the inode.
type File struct {
	Major, Minor uint32
	Inode        uint64
}

// errFormat reports a line of smaps that does not read as the kernel
// writes it.
var errFormat = errors.New("textpages: unexpected /proc/self/smaps format")

// Select returns the regions of smaps (the text of /proc/PID/smaps) that
// map exe privately, without write permission, and hold no anonymous
// page. It is pure: Release reads the files and calls it.
func Select(smaps []byte, exe File) ([]Region, error) {
	var out []Region
	var cur *Region // the current mapping, if it is a candidate
	keep := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") {
			// A mapping's header: "start-end perms offset major:minor
			// inode [path]".
			keep()
			r, ok, err := header(f, exe)
			if err != nil {
				return nil, fmt.Errorf("%w: %q", err, line)
			}
			if ok {
				cur = &r
			}
			continue
		}
		if cur == nil {
			continue
		}
		switch f[0] {
		case "Rss:", "Anonymous:":
			if len(f) != 3 || f[2] != "kB" {
				return nil, fmt.Errorf("%w: %q", errFormat, line)
			}
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: %q", errFormat, line)
			}
			if f[0] == "Rss:" {
				cur.Rss = kb << 10
			} else if kb != 0 {
				// Copy-on-write pages (a debugger's breakpoint): they
				// would be lost.
				cur = nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("textpages: %w", err)
	}
	keep()
	return out, nil
}

// header parses the first line of a mapping in smaps and says whether it
// is a candidate: a private, read-only mapping of exe.
func header(f []string, exe File) (Region, bool, error) {
	if len(f) < 5 {
		return Region{}, false, errFormat
	}
	start, end, ok := strings.Cut(f[0], "-")
	if !ok {
		return Region{}, false, errFormat
	}
	var r Region
	var err1, err2 error
	r.Start, err1 = strconv.ParseUint(start, 16, 64)
	r.End, err2 = strconv.ParseUint(end, 16, 64)
	if err1 != nil || err2 != nil || r.End < r.Start || len(f[1]) != 4 {
		return Region{}, false, errFormat
	}
	r.Perms = f[1]
	maj, min, ok := strings.Cut(f[3], ":")
	if !ok {
		return Region{}, false, errFormat
	}
	ma, err1 := strconv.ParseUint(maj, 16, 32)
	mi, err2 := strconv.ParseUint(min, 16, 32)
	ino, err3 := strconv.ParseUint(f[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Region{}, false, errFormat
	}
	if ino == 0 || (File{uint32(ma), uint32(mi), ino}) != exe {
		return Region{}, false, nil
	}
	// r[w]?[x-]p: readable, not writable, private.
	if r.Perms[0] != 'r' || r.Perms[1] != '-' || r.Perms[3] != 'p' {
		return Region{}, false, nil
	}
	return r, true, nil
}

// Executable identifies the running binary's file (that of
// /proc/self/exe, even when it was since deleted or replaced on disk).
func Executable() (File, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return File{}, fmt.Errorf("textpages: %w", err)
	}
	return File{unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino}, nil
}

// Release drops the resident pages of the process's own read-only
// mappings of its executable (see Select) and returns the regions it
// released, with their resident size before. Pages the process uses
// afterwards fault back from the page cache. It is safe to call from any
// goroutine at any time; each call costs a read of /proc/self/smaps and
// one madvise per region.
func Release() ([]Region, error) {
	exe, err := Executable()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("textpages: %w", err)
	}
	rs, err := Select(b, exe)
	if err != nil {
		return nil, err
	}
	for i, r := range rs {
		// The addresses come from the kernel and are not Go memory: the
		// raw system call keeps them out of unsafe.Pointer.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(r.Start), uintptr(r.Size()), unix.MADV_DONTNEED); e != 0 {
			return rs[:i], fmt.Errorf("textpages: madvise %x-%x %s: %w", r.Start, r.End, r.Perms, e)
		}
	}
	return rs, nil
}

// ReleaseAndLog calls Release and logs at debug level what it dropped
// (mappings, their size and what of them was resident, in kB) and how
// long it took, or why it failed.
func ReleaseAndLog(log *slog.Logger) {
	t0 := time.Now()
	rs, err := Release()
	if err != nil {
		log.Debug("releasing the binary's pages", "err", err)
		return
	}
	var size, rss uint64
	for _, r := range rs {
		size += r.Size()
		rss += r.Rss
	}
	log.Debug("released the binary's pages", "mappings", len(rs), "mapped_kb", size>>10, "resident_kb", rss>>10, "took", time.Since(t0))
}
