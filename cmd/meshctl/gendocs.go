//go:build gendocs

package main

// The Debian package's man pages and bash completion come from the command
// tree itself, so they cannot drift from it. Only a meshctl built with
// -tags gendocs has this command (packaging/deb/build.sh builds one for the
// machine that builds the package): the shipped meshctl carries no man page
// generator.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshd/meshd/mesh/api"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { extraCommands = append(extraCommands, newGenDocsCommand) }

func newGenDocsCommand(*cli) *cobra.Command {
	return &cobra.Command{
		Use:    "__gendocs DIR",
		Short:  "Write meshctl's man pages (DIR/man1) and bash completion (DIR/bash-completion/meshctl)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE:   func(cmd *cobra.Command, args []string) error { return genDocs(cmd.Root(), args[0]) },
	}
}

// genDocs writes the pages with the date of $SOURCE_DATE_EPOCH when set,
// so that a package built twice from one commit is the same.
func genDocs(root *cobra.Command, dir string) error {
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	root.DisableAutoGenTag = true
	man := filepath.Join(dir, "man1")
	comp := filepath.Join(dir, "bash-completion")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// This command is hidden and documents nothing: gone from the pages.
	if self, _, err := root.Find([]string{"__gendocs"}); err == nil && self != root {
		root.RemoveCommand(self)
	}
	// No Title: each page is titled by its command (MESHCTL-SERVICE-CREATE).
	header := &doc.GenManHeader{Section: "1", Date: &date, Source: "meshd " + api.Version, Manual: "meshd manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	f, err := os.Create(filepath.Join(comp, "meshctl"))
	if err != nil {
		return err
	}
	if err := root.GenBashCompletionV2(f, true); err != nil {
		f.Close()
		return fmt.Errorf("bash completion: %w", err)
	}
	return f.Close()
}
