package main

import (
	"context"
	"os"

	"github.com/kakin-dev/kakin/app"
)

// runServe runs the roles of --roles (kakin serve): app wires them and
// runs them until ctx ends or one fails.
func runServe(ctx context.Context, args []string) error {
	cfg, err := loadConfig("serve", args)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, cfg.Log.Logger(os.Stderr))
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
