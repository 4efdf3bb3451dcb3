package main

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/meshd/meshd/mesh/images"
	"github.com/spf13/cobra"
)

func newImagesCommand(c *cli) *cobra.Command {
	var opts listOptions
	cmd := &cobra.Command{
		Use: "images [OPTIONS] [REPOSITORY[:TAG]]", Short: "List the built-in images", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error { return runImages(c.out, opts, args) },
	}
	addListFlags(cmd, &opts, "Only show image IDs", imageFilters.keys())
	addNoTruncFlag(cmd, &opts)
	return cmd
}

// imageRow is an image as docker images shows it. Every built-in runs
// whatever tag is asked for; the list shows "latest", or the tag given.
type imageRow struct {
	Repository string
	Tag        string
	id         string
	noTrunc    bool
}

var imageFields = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
}

// ID is the image's ID: 12 hex digits, or "sha256:…" whole with --no-trunc,
// as docker prints them.
func (r imageRow) ID() string {
	if r.noTrunc {
		return r.id
	}
	return shortID(strings.TrimPrefix(r.id, "sha256:"))
}

// Digest, CreatedSince, CreatedAt and Size are what docker shows for an
// image with no registry digest, no creation time and no layers.
func (imageRow) Digest() string       { return "<none>" }
func (imageRow) CreatedSince() string { return "N/A" }
func (imageRow) CreatedAt() string    { return "" }
func (imageRow) Size() string         { return "0B" }

// imageFilters are docker images' filters that mean something here: a
// built-in is never dangling and carries no labels.
var imageFilters = filterSpec[imageRow]{
	"reference": func(r imageRow, v string) bool {
		ok, _ := path.Match(v, r.Repository)
		okTag, _ := path.Match(v, r.Repository+":"+r.Tag)
		return ok || okTag
	},
	"dangling": func(_ imageRow, v string) bool { return v == "false" },
	"label":    noLabel[imageRow],
}

// runImages lists the built-in images as docker images does; with
// REPOSITORY[:TAG], only that one (none if it is not built in).
func runImages(out io.Writer, opts listOptions, args []string) error {
	f, err := imageFilters.parse(opts.filter)
	if err != nil {
		return err
	}
	for _, v := range f["reference"] {
		if _, err := path.Match(v, ""); err != nil {
			return fmt.Errorf("invalid reference filter %q: %v", v, err)
		}
	}
	for _, v := range f["dangling"] {
		if v != "true" && v != "false" {
			return fmt.Errorf("invalid filter 'dangling=%s'", v)
		}
	}
	var rows []imageRow
	if len(args) == 1 {
		img, err := images.Lookup(args[0])
		if err == nil {
			rows = append(rows, imageRow{Repository: img.Name, Tag: cmp.Or(img.Tag, "latest"), id: images.ID(img.Name), noTrunc: opts.noTrunc})
		}
	} else {
		for _, name := range images.Names() {
			rows = append(rows, imageRow{Repository: name, Tag: "latest", id: images.ID(name), noTrunc: opts.noTrunc})
		}
	}
	rows = imageFilters.keep(rows, f)
	return printList(out, opts, rows, listView[imageRow, imageRow]{
		id:      func(r imageRow) string { return r.ID() },
		header:  []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"},
		row:     func(r imageRow) []string { return []string{r.Repository, r.Tag, r.ID(), r.CreatedSince(), r.Size()} },
		context: func(r imageRow) imageRow { return r },
		fields:  imageFields,
	})
}
