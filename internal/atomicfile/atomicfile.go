// Package atomicfile replaces a file's content in one step: the new content
// goes to a temporary file in the same directory, which is then renamed
// over the path. A reader sees the old file or the new one, never half of
// one, and a writer in a world-writable directory (/tmp, /run) cannot be
// made to write through a planted symlink:
//
//   - the temporary name is random and created with O_CREAT|O_EXCL
//     (os.CreateTemp), so a symlink or file planted at a guessed name makes
//     the create fail instead of being followed;
//   - rename(2) replaces a symlink at the path itself; it never writes
//     through it;
//   - the mode is set with fchmod on the open file, so it is the caller's
//     mode exactly, not the caller's mode masked by the umask.
//
// keepalived 2.2.7 reaches the same ends with fopen_safe (mkstemp, then
// rename) for its dumps and track files.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Options says how Write finishes the file.
type Options struct {
	// Perm is the new file's mode, applied exactly (the umask does not
	// narrow it).
	Perm os.FileMode
	// Sync flushes the content to disk before the rename and the directory
	// after it, so that after a crash the path holds the old content or the
	// new, never an empty file. It costs two fsyncs: for files that must
	// survive a reboot, not for status files rewritten every second.
	Sync bool
}

// Write replaces path with what fill writes. On any error the temporary
// file is removed and path is left as it was. Errors name path.
func Write(path string, o Options, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(o.Perm)
	if err == nil {
		err = fill(f)
	}
	if err == nil && o.Sync {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: %s: %w", path, err)
	}
	if o.Sync {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("atomicfile: %s: %w", path, err)
		}
	}
	return nil
}

// WriteFile replaces path with data: Write with a fill that writes data.
func WriteFile(path string, data []byte, o Options) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
