package textpages

import (
	"bytes"
	"log/slog"
	"os"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"
)

// smaps of a vigil process, trimmed to the fields Select reads and a few
// it skips; exe is 254:0 inode 9978855.
const smaps = `00400000-00b62000 r-xp 00000000 fe:00 9978855                            /usr/sbin/vigil
Size:               7560 kB
Rss:                6664 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me sd
00b62000-012ed000 r--p 00762000 fe:00 9978855                            /usr/sbin/vigil
Size:               7724 kB
Rss:                6636 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
012ed000-0135c000 rw-p 00eed000 fe:00 9978855                            /usr/sbin/vigil
Size:                444 kB
Rss:                 380 kB
Anonymous:            96 kB
VmFlags: rd wr mr mw me ac sd
0135c000-033a1000 rw-p 00000000 00:00 0
Size:              33044 kB
Rss:                 112 kB
Anonymous:           112 kB
VmFlags: rd wr mr mw me ac sd
7efe3565e000-7efe35660000 r-xp 00000000 00:00 0                          [vdso]
Size:                  8 kB
Rss:                   8 kB
Anonymous:             0 kB
7f0000000000-7f0000010000 r--p 00000000 fe:00 1234                       /usr/lib/locale/C.utf8/LC_CTYPE
Size:                 64 kB
Rss:                  64 kB
Anonymous:             0 kB
7f0000010000-7f0000020000 r--s 00000000 fe:00 9978855                    /usr/sbin/vigil
Size:                 64 kB
Rss:                  64 kB
Anonymous:             0 kB
7f0000020000-7f0000030000 r-xp 00001000 fe:00 9978855                    /usr/sbin/vigil (deleted)
Size:                 64 kB
Rss:                  12 kB
Anonymous:             4 kB
7f0000030000-7f0000040000 r--p 00001000 fe:01 9978855                    /mnt/other
Size:                 64 kB
Rss:                  64 kB
Anonymous:             0 kB
7f0000040000-7f0000050000 r--p 00001000 fe:00 9978855                    /usr/sbin/vigil (deleted)
Size:                 64 kB
Rss:                  20 kB
Anonymous:             0 kB
7ffc59478000-7ffc59499000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
Anonymous:            16 kB
`

// Select keeps the private read-only mappings of the executable (also
// once deleted or replaced on disk) and leaves its writable data, a
// shared mapping, a mapping holding copy-on-write pages, other files,
// anonymous memory, the vdso and the stack.
func TestSelect(t *testing.T) {
	got, err := Select([]byte(smaps), File{Major: 0xfe, Minor: 0, Inode: 9978855})
	if err != nil {
		t.Fatal(err)
	}
	want := []Region{
		{0x400000, 0xb62000, "r-xp", 6664 << 10},
		{0xb62000, 0x12ed000, "r--p", 6636 << 10},
		{0x7f0000040000, 0x7f0000050000, "r--p", 20 << 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d regions %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("region %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, _ := Select([]byte(smaps), File{Major: 0xfe, Inode: 1}); len(got) != 0 {
		t.Errorf("another file: got %+v", got)
	}
}

// A line not as the kernel writes it is an error, not a guess.
func TestSelectBadInput(t *testing.T) {
	exe := File{Major: 0xfe, Inode: 9978855}
	for _, in := range []string{
		"00400000 r-xp 00000000 fe:00 9978855 /usr/sbin/vigil\n",
		"00b62000-00400000 r-xp 00000000 fe:00 9978855 /usr/sbin/vigil\n",
		"00400000-00b62000 r-xp 00000000 fe00 9978855 /usr/sbin/vigil\n",
		"00400000-00b62000 r-xp 00000000 fe:00 x /usr/sbin/vigil\n",
		"00400000-00b62000 r-xp 00000000 fe:00 9978855 /usr/sbin/vigil\nRss: 12\n",
		"00400000-00b62000 r-xp 00000000 fe:00 9978855 /usr/sbin/vigil\nAnonymous: x kB\n",
	} {
		if got, err := Select([]byte(in), exe); err == nil {
			t.Errorf("%q: got %+v and no error", in, got)
		}
	}
}

// initialised lives in the binary's .data: a private, writable file
// mapping whose written page is anonymous memory, which Release must
// leave as it is.
var initialised = [4]int{1, 2, 3, 4}

// Release drops the test binary's own text and rodata, all mapped
// beforehand (MADV_POPULATE_READ): right after, few of their pages are
// present in its page table (those the code between faults back, 64 KiB a
// fault with the kernel's fault-around), and a written page of its data
// keeps what was written.
func TestRelease(t *testing.T) {
	initialised[2] = 42
	exe, err := Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Select(b, exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 2 {
		t.Fatalf("%d read-only mappings of the test binary (want its text and rodata): %+v", len(rs), rs)
	}
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	var size uint64
	for _, r := range rs {
		size += r.Size()
	}
	buf := make([]byte, size/4096*8)
	// present counts the pages of rs mapped now (pagemap bit 63); a
	// first call maps its own code.
	present := func() (n uint64) {
		off := 0
		for _, r := range rs {
			m := buf[off : off+int(r.Size()/4096*8)]
			off += len(m)
			if _, err := pm.ReadAt(m, int64(r.Start/4096*8)); err != nil {
				return 0
			}
			for i := 0; i < len(m); i += 8 {
				n += uint64(m[i+7] >> 7)
			}
		}
		return n * 4096
	}
	present()
	for _, r := range rs {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(r.Start), uintptr(r.Size()), unix.MADV_POPULATE_READ); e != 0 {
			t.Skipf("MADV_POPULATE_READ: %v (Linux 5.14 and later)", e)
		}
	}
	before := present()
	released, err := Release()
	after := present()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range released {
		if r.Perms[1] == 'w' {
			t.Errorf("released a writable mapping: %+v", r)
		}
	}
	t.Logf("%d mappings, %d kB: %d kB present before Release, %d kB after", len(released), size>>10, before>>10, after>>10)
	if before < size*9/10 || after > size/2 {
		t.Errorf("%d kB mapped: %d kB present before Release, %d kB after", size>>10, before>>10, after>>10)
	}
	if initialised != [4]int{1, 2, 42, 4} {
		t.Errorf("data changed: %v", initialised)
	}
}

// ReleaseAndLog logs the release at debug level with its figures.
func TestReleaseAndLog(t *testing.T) {
	var b bytes.Buffer
	ReleaseAndLog(slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	re := regexp.MustCompile(`level=DEBUG msg="released the binary's pages" mappings=([2-9]|\d\d) mapped_kb=[1-9]\d* resident_kb=\d+ took=`)
	if !re.Match(b.Bytes()) {
		t.Errorf("logged %q", b.String())
	}
}
