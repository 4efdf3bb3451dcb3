package mesh

import (
	"net/http"
	"path/filepath"
	"strings"

	"github.com/meshd/meshd/internal/nsfile"
	"github.com/meshd/meshd/mesh/api"
)

// handleNamespaces lists this node's namespace files with what they are.
func (d *Daemon) handleNamespaces(w http.ResponseWriter, r *http.Request) {
	names, err := nsfile.List(d.nsDir())
	if err != nil {
		writeError(w, err)
		return
	}
	st := d.objects()
	out := make([]api.Namespace, 0, len(names))
	for _, name := range names {
		ns := api.Namespace{Name: name, Path: filepath.Join(d.nsDir(), name)}
		ns.Kind, ns.Owner = describeNamespace(st, name)
		out = append(out, ns)
	}
	writeJSON(w, http.StatusOK, out)
}

// describeNamespace tells what a namespace file name stands for.
func describeNamespace(st State, name string) (kind, owner string) {
	switch {
	case name == "ingress_sbox":
		return "ingress", api.IngressName
	case strings.HasPrefix(name, "1-"):
		for id, n := range st.Networks {
			if strings.HasPrefix(id, name[2:]) {
				return "overlay", n.Name
			}
		}
		return "overlay", ""
	case strings.HasPrefix(name, "lb_"):
		for id, n := range st.Networks {
			if strings.HasPrefix(id, name[3:]) {
				return "lb", n.Name
			}
		}
		return "lb", ""
	}
	for _, t := range st.Tasks {
		if t.Hostname() == name {
			return "task", t.Name()
		}
	}
	return "", ""
}
