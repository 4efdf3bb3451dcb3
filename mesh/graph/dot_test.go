package graph

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/internal/testutil"
)

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), got)
}

func TestDOTGolden(t *testing.T) {
	var out bytes.Buffer
	if err := DOT(&out, fixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.dot", out.String())
}

func TestMermaidGolden(t *testing.T) {
	var out bytes.Buffer
	if err := Mermaid(&out, fixture()); err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.mermaid", out.String())
}
