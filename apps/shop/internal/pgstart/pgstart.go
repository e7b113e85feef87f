// Package pgstart is the entry of a shop database container: it initialises
// a PostgreSQL data directory on first start and then becomes the postgres
// server (exec), so the server is the container's process and gets its
// signals.
package pgstart

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// initialisedMarker is written last during initialisation; a data directory
// without it is finished on the next start.
const initialisedMarker = ".weft-initialised"

// maxSocketPath is the longest unix socket path the kernel accepts, minus
// slack.
const maxSocketPath = 100

// Config says where PostgreSQL lives and what the first start creates.
type Config struct {
	BinDir          string // directory of initdb and postgres
	DataDir         string
	Port            int
	ListenAddresses string // empty keeps postgresql.conf's '*'
	SocketDir       string // empty: the data directory when its path is short enough
	User            string // superuser created by initdb
	Password        string
	Database        string // created on first start
}

// ConfigFromEnv reads the configuration the way the postgres Docker image
// does (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA, PGPORT), plus
// PG_BIN_DIR, PG_LISTEN_ADDRESSES and PG_SOCKET_DIR; flags override them.
func ConfigFromEnv(args []string) (Config, error) {
	envOr := func(name, fallback string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return fallback
	}
	cfg := Config{
		User:     envOr("POSTGRES_USER", "postgres"),
		Password: os.Getenv("POSTGRES_PASSWORD"),
	}
	cfg.Database = envOr("POSTGRES_DB", cfg.User)
	flags := flag.NewFlagSet("pg-start", flag.ContinueOnError)
	flags.StringVar(&cfg.BinDir, "bin-dir", envOr("PG_BIN_DIR", "/usr/lib/postgresql/15/bin"), "directory of initdb and postgres (env PG_BIN_DIR)")
	flags.StringVar(&cfg.DataDir, "data-dir", envOr("PGDATA", "/var/lib/postgresql/data"), "data directory (env PGDATA)")
	port := flags.String("port", envOr("PGPORT", "5432"), "TCP port (env PGPORT)")
	flags.StringVar(&cfg.ListenAddresses, "listen-addresses", os.Getenv("PG_LISTEN_ADDRESSES"), "listen_addresses (env PG_LISTEN_ADDRESSES; default '*')")
	flags.StringVar(&cfg.SocketDir, "socket-dir", os.Getenv("PG_SOCKET_DIR"), "unix socket directory (env PG_SOCKET_DIR; default the data directory)")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	n, err := strconv.Atoi(*port)
	if err != nil || n < 1 || n > 65535 {
		return cfg, fmt.Errorf("port %q (PGPORT or --port) must be a number from 1 to 65535", *port)
	}
	cfg.Port = n
	if !filepath.IsAbs(cfg.DataDir) {
		return cfg, fmt.Errorf("data directory %q (PGDATA or --data-dir) must be an absolute path", cfg.DataDir)
	}
	return cfg, nil
}

// Main initialises if needed and then replaces the process with postgres.
func Main(ctx context.Context, log *slog.Logger, args []string) error {
	cfg, err := ConfigFromEnv(args)
	if err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return errors.New("pg-start runs as root, and PostgreSQL refuses to: run the container as the postgres OS user (user: postgres)")
	}
	if err := Bootstrap(ctx, log, cfg); err != nil {
		return err
	}
	return Exec(cfg)
}

// Initialised tells whether dataDir holds a finished cluster.
func Initialised(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, initialisedMarker))
	return err == nil
}

// Bootstrap makes dataDir a ready cluster: initdb, configuration, password,
// database. An initialised directory is left untouched, so restarts reuse
// the data.
func Bootstrap(ctx context.Context, log *slog.Logger, cfg Config) error {
	if Initialised(cfg.DataDir) {
		log.Info("data directory already initialised", "data_dir", cfg.DataDir)
		return nil
	}
	if cfg.Password == "" {
		return errors.New("POSTGRES_PASSWORD is empty: set it in the container's env; the superuser needs it for TCP logins (scram-sha-256)")
	}
	_, statErr := os.Stat(filepath.Join(cfg.DataDir, "PG_VERSION"))
	if errors.Is(statErr, os.ErrNotExist) {
		if err := initdb(ctx, log, cfg); err != nil {
			return err
		}
	}
	if err := configure(cfg); err != nil {
		return err
	}
	if err := createDatabase(ctx, log, cfg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, initialisedMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("marking data directory %s initialised: %w", cfg.DataDir, err)
	}
	log.Info("data directory initialised", "data_dir", cfg.DataDir, "database", cfg.Database, "user", cfg.User)
	return nil
}

func initdb(ctx context.Context, log *slog.Logger, cfg Config) error {
	entries, err := os.ReadDir(cfg.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading data directory %s: %w", cfg.DataDir, err)
	}
	for _, entry := range entries {
		if entry.Name() != "lost+found" {
			return fmt.Errorf("data directory %s is not empty but holds no PostgreSQL cluster (found %s): empty it or point PGDATA elsewhere", cfg.DataDir, entry.Name())
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory %s (it or its parent must be writable by the postgres user): %w", cfg.DataDir, err)
	}
	pwfile, err := os.CreateTemp("", "pg-start-pw-")
	if err != nil {
		return fmt.Errorf("creating password file: %w", err)
	}
	defer os.Remove(pwfile.Name())
	if _, err := io.WriteString(pwfile, cfg.Password+"\n"); err != nil {
		pwfile.Close()
		return fmt.Errorf("writing password file: %w", err)
	}
	if err := pwfile.Close(); err != nil {
		return fmt.Errorf("writing password file: %w", err)
	}
	log.Info("running initdb", "data_dir", cfg.DataDir)
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "initdb"),
		"-D", cfg.DataDir, "-U", cfg.User, "--pwfile="+pwfile.Name(),
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s (is PostgreSQL installed? set PG_BIN_DIR): %w", cmd.Path, err)
	}
	return nil
}

// HBA is the client authentication of a shop database: trust on the
// container's own unix socket, passwords over the network.
const HBA = `# written by weft shop pg-start
local all all trust
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
`

func configure(cfg Config) error {
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "pg_hba.conf"), []byte(HBA), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	confPath := filepath.Join(cfg.DataDir, "postgresql.conf")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		return fmt.Errorf("reading %s: %w", confPath, err)
	}
	const settings = "\n# weft shop pg-start\nlisten_addresses = '*'\npassword_encryption = 'scram-sha-256'\n"
	if !strings.Contains(string(conf), "# weft shop pg-start") {
		if err := os.WriteFile(confPath, append(conf, settings...), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", confPath, err)
		}
	}
	return nil
}

// createDatabase runs a private server (no TCP, socket in a fresh temporary
// directory) just long enough to set the password and create the database.
func createDatabase(ctx context.Context, log *slog.Logger, cfg Config) error {
	socketDir, err := os.MkdirTemp("", "pg-start-")
	if err != nil {
		return fmt.Errorf("creating temporary socket directory: %w", err)
	}
	defer os.RemoveAll(socketDir)
	server := exec.Command(filepath.Join(cfg.BinDir, "postgres"), "-D", cfg.DataDir, "-p", strconv.Itoa(cfg.Port),
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+socketDir)
	server.Stdout, server.Stderr = os.Stderr, os.Stderr
	if err := server.Start(); err != nil {
		return fmt.Errorf("starting temporary postgres: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	defer stopServer(log, server, exited)

	connConfig, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres", socketDir, cfg.Port, cfg.User))
	if err != nil {
		return fmt.Errorf("building connection to temporary postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var conn *pgx.Conn
	for {
		conn, err = pgx.ConnectConfig(ctx, connConfig)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("temporary postgres did not accept connections within 60s: %w", err)
		}
		select {
		case exitErr := <-exited:
			exited <- exitErr
			return fmt.Errorf("temporary postgres exited during initialisation (see its log above): %v", exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	user := pgx.Identifier{cfg.User}.Sanitize()
	if _, err := conn.Exec(ctx, "ALTER ROLE "+user+" WITH PASSWORD "+quoteLiteral(cfg.Password)); err != nil {
		return fmt.Errorf("setting the password of %s: %w", cfg.User, err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists); err != nil {
		return fmt.Errorf("checking for database %s: %w", cfg.Database, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize()+" OWNER "+user); err != nil {
			return fmt.Errorf("creating database %s: %w", cfg.Database, err)
		}
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal; ALTER ROLE takes no
// parameters.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func stopServer(log *slog.Logger, server *exec.Cmd, exited chan error) {
	// SIGINT is PostgreSQL's fast shutdown: clean, without waiting for clients.
	_ = server.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		log.Warn("temporary postgres did not stop within 30s, killing it")
		_ = server.Process.Kill()
		<-exited
	}
}

// ServerArgs are the arguments of the long-running postgres; the first is
// its full path, which postgres needs to find its installation.
func ServerArgs(cfg Config) []string {
	args := []string{filepath.Join(cfg.BinDir, "postgres"), "-D", cfg.DataDir, "-p", strconv.Itoa(cfg.Port)}
	if cfg.ListenAddresses != "" {
		args = append(args, "-c", "listen_addresses="+cfg.ListenAddresses)
	}
	socketDir := cfg.SocketDir
	if socketDir == "" && len(cfg.DataDir)+len("/.s.PGSQL.65535") <= maxSocketPath {
		// Each database container has its own data directory, so sockets of
		// several servers on the same port never collide.
		socketDir = cfg.DataDir
	}
	// An empty value turns the unix socket off; TCP still works.
	return append(args, "-c", "unix_socket_directories="+socketDir)
}

// Exec replaces the process with postgres. PostgreSQL itself recognises a
// stale postmaster.pid left by a kill -9 and starts anyway.
func Exec(cfg Config) error {
	binary := filepath.Join(cfg.BinDir, "postgres")
	if err := syscall.Exec(binary, ServerArgs(cfg), os.Environ()); err != nil {
		return fmt.Errorf("executing %s: %w", binary, err)
	}
	return nil
}
