package nft

import "github.com/google/nftables"

// A netlink attribute's length is 16 bits, and google/nftables puts the
// elements of one AddSet or SetAddElements call in one attribute, without
// checking: past 64 KiB the length wraps, and the kernel refuses the whole
// batch (ENOENT) or reads the rest of the message as other attributes. A
// scheduling table of a few hundred real servers passes that (about 100
// bytes an element with a verdict). So elements go in messages of at most
// elemChunkBytes, estimated.
const elemChunkBytes = 32 << 10

// elemBytes over-estimates an element's encoded size: the attribute headers
// of the key, key end, data or verdict, flags, timeout and comment, and
// their contents.
func elemBytes(e nftables.SetElement) int {
	n := 96 + len(e.Key) + len(e.KeyEnd) + len(e.Val) + len(e.Comment)
	if e.VerdictData != nil {
		n += len(e.VerdictData.Chain)
	}
	return n
}

// addSet creates s (a no-op if it exists) and adds es to it in chunks.
func addSet(c *nftables.Conn, s *nftables.Set, es []nftables.SetElement) error {
	if err := c.AddSet(s, nil); err != nil {
		return err
	}
	return addChunked(c, s, es)
}

// addChunked adds es to s in messages of at most elemChunkBytes.
func addChunked(c *nftables.Conn, s *nftables.Set, es []nftables.SetElement) error {
	for len(es) > 0 {
		n, size := 0, 0
		for n < len(es) && (n == 0 || size+elemBytes(es[n]) <= elemChunkBytes) {
			size += elemBytes(es[n])
			n++
		}
		if err := c.SetAddElements(s, es[:n]); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}
