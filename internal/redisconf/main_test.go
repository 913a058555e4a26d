package redisconf_test

import (
	"testing"

	"github.com/meetops/meetops/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }
