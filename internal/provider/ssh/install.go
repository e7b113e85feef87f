package ssh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"
)

// copyTimeout bounds the copy of one file (the weft binary is the big one).
const copyTimeout = 5 * time.Minute

// upload is one file to put on a server.
type upload struct {
	local, remote string
	mode          os.FileMode
}

// syncFiles puts each file on the server unless the server's copy has the
// same sha256 already, and returns the remote paths it copied. Each copy
// goes over a session's stdin into a temporary file renamed into place,
// so a reader never sees half a file (a running binary keeps its inode).
func syncFiles(ctx context.Context, cl *xssh.Client, files []upload) ([]string, error) {
	if len(files) == 0 {
		return nil, nil
	}
	remote := make([]string, len(files))
	for i, f := range files {
		remote[i] = f.remote
	}
	hctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	out, err := run(hctx, cl, "sha256sum -- "+shellJoin(remote)+" 2>/dev/null; true", nil)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("reading the hashes of weft's files: %w", err)
	}
	have := parseSums(string(out))
	var copied []string
	for _, f := range files {
		sum, err := fileSHA256(f.local)
		if err != nil {
			return copied, err
		}
		if have[f.remote] == sum {
			continue
		}
		if err := copyFile(ctx, cl, f); err != nil {
			return copied, err
		}
		copied = append(copied, f.remote)
	}
	return copied, nil
}

// parseSums reads sha256sum's output: path -> hex sum.
func parseSums(out string) map[string]string {
	sums := map[string]string{}
	for line := range strings.Lines(out) {
		sum, file, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if ok {
			sums[file] = sum
		}
	}
	return sums
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func copyFile(ctx context.Context, cl *xssh.Client, f upload) error {
	src, err := os.Open(f.local)
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.local, err)
	}
	defer src.Close()
	tmp := f.remote + ".weft-tmp"
	// The content is never readable by others, not even for a moment.
	cmd := fmt.Sprintf("mkdir -p %s && (umask 077 && cat > %s) && chmod %o %s && mv -f %s %s",
		shellQuote(path.Dir(f.remote)), shellQuote(tmp), uint32(f.mode.Perm()), shellQuote(tmp), shellQuote(tmp), shellQuote(f.remote))
	ctx, cancel := context.WithTimeout(ctx, copyTimeout)
	defer cancel()
	if _, err := run(ctx, cl, cmd, src); err != nil {
		return fmt.Errorf("copying %s to %s: %w", f.local, f.remote, err)
	}
	return nil
}
