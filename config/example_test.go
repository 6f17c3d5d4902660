package config_test

import (
	"fmt"

	"github.com/clearinghouse-net/clearinghouse/config"
)

// Validate reports every problem, each naming its key path.
func ExampleConfig_Validate() {
	cfg := config.Default()
	cfg.Sync.Interval = 0
	cfg.Topics.Follow = []string{"privacy", "Jurisdiction"}
	fmt.Println(cfg.Validate())
	// Output:
	// config: topics.follow[1]: invalid issue slug "Jurisdiction": want 1 to 63 of a-z, 0-9 and '-', not starting with '-'
	// config: sync.interval: must be > 0, not 0s
}
