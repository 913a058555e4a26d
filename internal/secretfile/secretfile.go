// Package secretfile reads a secret from a file named by a NAME_FILE
// variable (Docker and Kubernetes secrets, systemd credentials), safely:
// bounded in size, trailing white space trimmed, and a warning when the
// file is readable by others.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// MaxSize is the largest secret file read; a bigger one (or a link to
// /dev/zero) is an error instead of unbounded memory.
const MaxSize = 64 << 10

// Read returns the content of the file at path with trailing white space
// (a newline, a stray space) trimmed, so that a secret written with echo or
// an editor is the secret intended. warning, when not empty, says the file
// is readable by its group or by everyone; the caller logs it. The error
// names neither the content nor a part of it.
func Read(path string) (secret, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", err
	}
	if fi.IsDir() {
		return "", "", fmt.Errorf("%s is a directory", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return "", "", err
	}
	if len(b) > MaxSize {
		return "", "", fmt.Errorf("%s is larger than %d KiB: not a secret", path, MaxSize>>10)
	}
	secret = strings.TrimRight(string(b), " \t\r\n\v\f")
	if secret == "" {
		return "", "", errors.New(path + " is empty")
	}
	if perm := fi.Mode().Perm(); fi.Mode().IsRegular() && perm&0o077 != 0 {
		warning = fmt.Sprintf("%s is readable by %s (mode %04o): chmod 600 it", path, who(perm), perm)
	}
	return secret, warning, nil
}

func who(perm fs.FileMode) string {
	if perm&0o007 != 0 {
		return "everyone"
	}
	return "its group"
}
