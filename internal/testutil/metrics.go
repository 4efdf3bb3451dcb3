package testutil

import (
	"fmt"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one parse of a Prometheus text exposition (GET /metrics).
type Scrape map[string]*dto.MetricFamily

// ParseScrape parses text in Prometheus' text format, failing t if it is
// not.
func ParseScrape(t testing.TB, text string) Scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return fams
}

// Value returns the sample of family name whose labels include labels
// ("k", "v" pairs): a counter's or gauge's value, a histogram's count of
// observations. ok is false when there is no such sample.
func (s Scrape) Value(name string, labels ...string) (v float64, ok bool) {
	fam := s[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Series returns the label sets of family name, one "k=v,k=v" string per
// sample, for messages.
func (s Scrape) Series(name string) []string {
	var out []string
	for _, m := range s[name].GetMetric() {
		var kv []string
		for _, l := range m.GetLabel() {
			kv = append(kv, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
		}
		out = append(out, strings.Join(kv, ","))
	}
	return out
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
