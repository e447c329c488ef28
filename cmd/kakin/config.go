package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kakin-dev/kakin/app"
)

// runConfig prints every flag of a process, its environment variable,
// default and meaning as a Markdown table (kakin config): README's table.
func runConfig(w io.Writer) {
	fs := flag.NewFlagSet("kakin", flag.ContinueOnError)
	new(app.Config).RegisterFlags(fs)
	fmt.Fprint(w, app.FlagTable(fs))
}
