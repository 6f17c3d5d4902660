//go:build !linux

package testnet

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// processRSS is not measured on this platform.
func processRSS() uint64 { return 0 }

// machineCPU is not measured on this platform.
func machineCPU() (busy, steal, all uint64, ok bool) { return 0, 0, 0, false }

const clockTick = 10 * time.Millisecond
