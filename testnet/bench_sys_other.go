//go:build !linux

package testnet

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// processRSS is not measured on this platform.
func processRSS() uint64 { return 0 }
