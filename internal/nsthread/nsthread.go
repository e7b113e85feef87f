// Package nsthread runs code inside a network namespace. setns(2) changes
// only the calling OS thread, so the code runs on a goroutine locked to a
// thread of its own; a thread that cannot be switched back is never handed
// back to the Go runtime (it stays locked and exits with its goroutine), so
// no other goroutine ever runs in the wrong namespace.
//
// Sockets and forked processes keep the namespace of the thread that made
// them, and files under /proc/sys/net show the namespace of the thread that
// opens them: that is what code run here can rely on.
package nsthread

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on a thread switched into target and returns fn's error.
func Do(target netns.NsHandle, fn func() error) error {
	return onOwnThread(func() (bool, error) {
		origin, err := netns.Get()
		if err != nil {
			return true, fmt.Errorf("reading the thread's network namespace: %w", err)
		}
		defer origin.Close()
		if err := netns.Set(target); err != nil {
			return true, fmt.Errorf("entering network namespace %s: %w", target, err)
		}
		fnErr := fn()
		if err := netns.Set(origin); err != nil {
			return false, errors.Join(fnErr, fmt.Errorf("returning the thread to its network namespace: %w", err))
		}
		return true, fnErr
	})
}

// DoNamed is Do for a named namespace (/run/netns/<name>).
func DoNamed(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("opening network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := Do(target, fn); err != nil {
		return fmt.Errorf("in network namespace %s: %w", name, err)
	}
	return nil
}

// DialNamed opens a connection from inside the named namespace: the socket
// is made on a thread switched into it and keeps that namespace for life.
func DialNamed(ctx context.Context, name string, d *net.Dialer, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := DoNamed(name, func() error {
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	return conn, nil
}

// NewNamed creates the named namespace /run/netns/<name> (like `ip netns
// add`) and returns a handle to it, without leaving any thread of the caller
// inside it. An existing name is an error that wraps os.ErrExist.
func NewNamed(name string) (netns.NsHandle, error) {
	created := netns.None()
	err := onOwnThread(func() (bool, error) {
		origin, err := netns.Get()
		if err != nil {
			return true, fmt.Errorf("reading the thread's network namespace: %w", err)
		}
		defer origin.Close()
		ns, createErr := netns.NewNamed(name)
		// NewNamed moves the thread into the new namespace (also when the
		// bind mount fails afterwards), so it always goes back.
		if err := netns.Set(origin); err != nil {
			if createErr == nil {
				ns.Close()
			}
			return false, fmt.Errorf("returning the thread to its network namespace after creating %s: %w", name, err)
		}
		if createErr != nil {
			return true, fmt.Errorf("creating network namespace %s: %w", name, createErr)
		}
		created = ns
		return true, nil
	})
	if err != nil {
		return netns.None(), err
	}
	return created, nil
}

// onOwnThread runs fn on a fresh goroutine locked to its thread; fn says
// whether the thread is fit to be handed back to the runtime.
func onOwnThread(fn func() (threadOK bool, err error)) error {
	result := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ok, err := fn()
		if ok {
			runtime.UnlockOSThread()
		}
		result <- err
	}()
	return <-result
}
