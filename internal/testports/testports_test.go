package testports

import (
	"fmt"
	"net"
	"testing"
)

func TestHoldMakesDefaultsBusy(t *testing.T) {
	release := Hold()
	for _, p := range Defaults.TCP {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			t.Errorf("port %d is free while held", p)
		}
	}
	for _, p := range Defaults.UDP {
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			c.Close()
			t.Errorf("udp port %d is free while held", p)
		}
	}
	release()
}

func TestFree(t *testing.T) {
	p, err := Free(3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
		if err != nil {
			t.Fatalf("port %d: %v", p+i, err)
		}
		l.Close()
	}
}
