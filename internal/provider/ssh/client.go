package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/weft-dev/weft/internal/spec"
	"github.com/weft-dev/weft/internal/syncbuf"
)

// dialTimeout bounds the TCP connect and the ssh handshake.
const dialTimeout = 15 * time.Second

// client returns the ssh connection to a server, made once.
func (p *Provider) client(ctx context.Context, cluster string, cfg spec.SSH, h spec.Host) (*xssh.Client, error) {
	key := cluster + "/" + h.Name
	p.mu.Lock()
	cl := p.clients[key]
	p.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	cl, err := p.connect(ctx, cfg, h)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]*xssh.Client{}
	}
	if old := p.clients[key]; old != nil {
		_ = cl.Close()
		return old, nil
	}
	p.clients[key] = cl
	return cl, nil
}

func (p *Provider) connect(ctx context.Context, cfg spec.SSH, h spec.Host) (*xssh.Client, error) {
	keyPath, err := expandHome(cfg.Key)
	if err != nil {
		return nil, err
	}
	signer, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	khPath, err := expandHome(cfg.KnownHosts)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(h.Address.String(), strconv.Itoa(cfg.Port))
	config := &xssh.ClientConfig{
		User:            cfg.User,
		Auth:            []xssh.AuthMethod{xssh.PublicKeys(signer)},
		HostKeyCallback: p.checkHostKey(h.Name, khPath),
		Timeout:         dialTimeout,
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	dial := p.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w (is sshd listening there, and ssh.port right?)", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(dialTimeout))
	c, chans, reqs, err := xssh.NewClientConn(conn, addr, config)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh to %s@%s: %w", cfg.User, addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return xssh.NewClient(c, chans, reqs), nil
}

func loadKey(path string) (xssh.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh.key: reading %s: %w (name a private key the servers' authorized_keys accept)", path, err)
	}
	signer, err := xssh.ParsePrivateKey(raw)
	var pass *xssh.PassphraseMissingError
	if errors.As(err, &pass) {
		return nil, fmt.Errorf("ssh.key: %s is protected by a passphrase, which weft cannot ask for: use a key without one for weft", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh.key: %s is not a private key weft can read: %w", path, err)
	}
	return signer, nil
}

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expanding %s: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// checkHostKey checks a server's key against known_hosts (read again for
// every server, so one accepted a moment ago counts). An unknown key is
// refused, or appended when AcceptNewHostKeys; a key that differs from the
// recorded one is always refused.
func (p *Provider) checkHostKey(host, path string) xssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key xssh.PublicKey) error {
		p.khMu.Lock()
		defer p.khMu.Unlock()
		check, err := knownhosts.New(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			check = nil
		case err != nil:
			return fmt.Errorf("ssh.known_hosts: reading %s: %w", path, err)
		}
		if check != nil {
			err := check(hostname, remote, key)
			var ke *knownhosts.KeyError
			switch {
			case err == nil:
				return nil
			case !errors.As(err, &ke):
				return err
			case len(ke.Want) > 0:
				return fmt.Errorf("the host key of %s (%s, %s) differs from the one in %s (line %d): someone may be in between; if the server was reinstalled, remove that line and run weft up --accept-new-host-keys",
					host, hostname, xssh.FingerprintSHA256(key), path, ke.Want[0].Line)
			}
		}
		if !p.AcceptNewHostKeys {
			return fmt.Errorf("the host key of %s (%s) is not in %s: check that its fingerprint is %s (ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub on the server) and run weft up --accept-new-host-keys to add it",
				host, hostname, path, xssh.FingerprintSHA256(key), keyFileKind(key))
		}
		if err := appendKnownHost(path, hostname, key); err != nil {
			return err
		}
		p.changed(host, "accepted host key %s into %s", xssh.FingerprintSHA256(key), path)
		return nil
	}
}

func keyFileKind(key xssh.PublicKey) string {
	switch key.Type() {
	case xssh.KeyAlgoED25519:
		return "ed25519"
	case xssh.KeyAlgoRSA:
		return "rsa"
	default:
		return "ecdsa"
	}
}

func appendKnownHost(path, hostname string, key xssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("ssh.known_hosts: creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("ssh.known_hosts: opening %s: %w", path, err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, knownhosts.Line([]string{hostname}, key)); err != nil {
		return fmt.Errorf("ssh.known_hosts: appending to %s: %w", path, err)
	}
	return nil
}

// run runs a shell command line in a new session of cl with stdin and
// returns its combined output; a non-zero exit is an error carrying it. ctx
// ends the session.
func run(ctx context.Context, cl *xssh.Client, cmd string, stdin io.Reader) ([]byte, error) {
	var out syncbuf.Buffer // stdout and stderr, copied by two goroutines
	code, err := stream(ctx, cl, cmd, stdin, &out, &out)
	b := out.Bytes()
	switch {
	case err != nil:
		return b, err
	case code != 0:
		return b, fmt.Errorf("running %q: exit status %d: %s", cmd, code, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// stream runs cmd in a session of cl with its output copied to stdout and
// stderr as it comes, and returns its exit status. stdin is copied by a
// goroutine of its own that nothing waits for: a terminal's stdin never
// ends, and the session must end when the command does.
func stream(ctx context.Context, cl *xssh.Client, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := cl.NewSession()
	if err != nil {
		return -1, fmt.Errorf("opening an ssh session: %w", err)
	}
	defer s.Close()
	s.Stdout, s.Stderr = stdout, stderr
	if stdin != nil {
		in, err := s.StdinPipe()
		if err != nil {
			return -1, fmt.Errorf("opening the session's stdin: %w", err)
		}
		go func() {
			_, _ = io.Copy(in, stdin)
			_ = in.Close()
		}()
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err := <-done:
		var exit *xssh.ExitError
		switch {
		case errors.As(err, &exit):
			return exit.ExitStatus(), nil
		case err != nil:
			return -1, fmt.Errorf("running %q: %w", cmd, err)
		}
		return 0, nil
	case <-ctx.Done():
		_ = s.Close()
		return -1, fmt.Errorf("running %q: %w", cmd, ctx.Err())
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
