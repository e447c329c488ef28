package billingdb

import (
	"testing"

	"github.com/kakin-dev/kakin/internal/testenv"
)

// Every test and benchmark migrates a ClickHouse database of its own on the
// server the package's tests share (testenv); in -short mode they skip.
func TestMain(m *testing.M) { testenv.Main(m, testenv.Want{ClickHouse: true}) }
