// Command helmrender renders a Helm chart the way `helm template` does, for
// the subset of Helm that bssiot's chart (k8s/) uses. Helm is not in the
// package registries this project builds from; Helm templates are Go's
// text/template plus the Sprig functions (both Debian packages) plus a few
// functions of Helm's own, which are reimplemented here with Helm's
// semantics:
//
//   - values: the chart's values.yaml, then each -f file, then each --set /
//     --set-string, merged the way Helm coalesces them (maps merge key by
//     key, anything else replaces, a null removes the key);
//   - .Release (Name, Namespace, Service, IsInstall, IsUpgrade, Revision),
//     .Chart (Chart.yaml's fields under Helm's capitalised names),
//     .Capabilities (KubeVersion, APIVersions.Has), .Template (Name,
//     BasePath), .Files (Get, GetBytes, Glob, Lines) for files outside
//     templates/;
//   - functions: Sprig's text functions without env/expandenv (Helm drops
//     them), and Helm's include, tpl, required, toYaml, fromYaml,
//     fromYamlArray, toJson, fromJson, fromJsonArray, lookup (always empty,
//     as in `helm template`);
//   - templates: every file under templates/ is parsed into one set; files
//     whose name starts with "_" are partials and NOTES.txt is not a
//     manifest; the rest are executed in name order with missingkey=zero and
//     "<no value>" removed, and printed as "---\n# Source: <chart>/<path>"
//     documents (whitespace-only output is dropped), like helm template.
//
// Anything it does not implement fails loudly (an unknown function is a
// parse error), so a chart that renders here but not in Helm is unlikely;
// the reverse (Helm features this lacks) shows up as a failed render.
//
// Usage:
//
//	helmrender --chart k8s [--name bssiot] [--namespace default]
//	           [-f values.yaml]... [--set a.b=c]... [--set-string a=b]...
//	           [--kube-version v1.22.0] [--api-versions group/version]...
//
// Exit status 0 with the manifests on stdout; 1 with the reason on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// Chart mirrors the fields of Helm's chart.Metadata that templates read as
// .Chart.<Field>.
type Chart struct {
	Name        string            `json:"name"`
	Home        string            `json:"home"`
	Sources     []string          `json:"sources"`
	Version     string            `json:"version"`
	Description string            `json:"description"`
	Keywords    []string          `json:"keywords"`
	Icon        string            `json:"icon"`
	APIVersion  string            `json:"apiVersion"`
	AppVersion  string            `json:"appVersion"`
	KubeVersion string            `json:"kubeVersion"`
	Type        string            `json:"type"`
	Annotations map[string]string `json:"annotations"`
}

// Release is .Release as `helm template` fills it.
type Release struct {
	Name      string
	Namespace string
	Service   string
	IsInstall bool
	IsUpgrade bool
	Revision  int
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

// String lets {{ .Capabilities.KubeVersion }} print the version.
func (k KubeVersion) String() string { return k.Version }

// VersionSet is .Capabilities.APIVersions.
type VersionSet []string

// Has reports whether a group/version (or group/version/Kind) is available.
func (v VersionSet) Has(apiVersion string) bool {
	for _, x := range v {
		if x == apiVersion {
			return true
		}
	}
	return false
}

// Capabilities is .Capabilities.
type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions VersionSet
}

// Files is .Files: the chart's files outside templates/, by relative path.
type Files map[string][]byte

// Get returns a file's content, or "" when there is no such file (as Helm).
func (f Files) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content as bytes.
func (f Files) GetBytes(name string) []byte { return f[name] }

// Lines returns a file's lines.
func (f Files) Lines(name string) []string {
	if f[name] == nil {
		return []string{}
	}
	return strings.Split(string(f[name]), "\n")
}

// Glob returns the files whose path matches a path.Match pattern.
func (f Files) Glob(pattern string) Files {
	out := Files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

// documentSeparator splits a template's output into YAML documents.
var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// The default API versions `helm template` assumes without a cluster, plus
// what this chart asks for (policy/v1, networking.k8s.io/v1).
var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "networking.k8s.io/v1",
	"rbac.authorization.k8s.io/v1", "autoscaling/v2", "monitoring.coreos.com/v1",
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "helmrender:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("helmrender", flag.ContinueOnError)
	chartDir := fl.String("chart", "", "chart directory")
	name := fl.String("name", "release-name", "release name")
	namespace := fl.String("namespace", "default", "release namespace")
	kubeVersion := fl.String("kube-version", "v1.22.0", "Kubernetes version for .Capabilities")
	var valueFiles, sets, setStrings, apiVersions multiFlag
	fl.Var(&valueFiles, "f", "values file (repeatable)")
	fl.Var(&valueFiles, "values", "values file (repeatable)")
	fl.Var(&sets, "set", "key=value[,key=value] (repeatable)")
	fl.Var(&setStrings, "set-string", "key=value, value kept a string (repeatable)")
	fl.Var(&apiVersions, "api-versions", "extra API version for .Capabilities (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *chartDir == "" || fl.NArg() != 0 {
		return errors.New("usage: helmrender --chart DIR [-f values.yaml] [--set k=v] [--name N] [--namespace NS]")
	}

	chart, err := loadChart(*chartDir)
	if err != nil {
		return err
	}
	values, err := loadYAMLMap(filepath.Join(*chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, f := range valueFiles {
		user, err := loadYAMLMap(f)
		if err != nil {
			return err
		}
		values = coalesce(values, user)
	}
	for _, s := range sets {
		if err := applySet(values, s, false); err != nil {
			return err
		}
	}
	for _, s := range setStrings {
		if err := applySet(values, s, true); err != nil {
			return err
		}
	}

	files, templates, err := loadFiles(*chartDir, chart.Name)
	if err != nil {
		return err
	}
	caps := Capabilities{KubeVersion: parseKubeVersion(*kubeVersion),
		APIVersions: append(VersionSet(defaultAPIVersions), apiVersions...)}
	top := map[string]interface{}{
		"Values":       values,
		"Chart":        chart,
		"Release":      Release{Name: *name, Namespace: *namespace, Service: "Helm", IsInstall: true, Revision: 1},
		"Capabilities": caps,
		"Files":        files,
	}
	out, err := render(templates, chart.Name, top)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(out)
	return err
}

func parseKubeVersion(v string) KubeVersion {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	k := KubeVersion{Version: v, GitVersion: v}
	if len(parts) >= 2 {
		k.Major, k.Minor = parts[0], parts[1]
	}
	return k
}

func loadChart(dir string) (Chart, error) {
	var c Chart
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return c, err
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, fmt.Errorf("Chart.yaml: %w", err)
	}
	if c.Name == "" || c.Version == "" || c.APIVersion != "v2" {
		return c, errors.New("Chart.yaml: name, version and apiVersion v2 are required")
	}
	return c, nil
}

func loadYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// coalesce merges user values over base like Helm: maps merge key by key,
// other values replace, and a user null deletes the key.
func coalesce(base, user map[string]interface{}) map[string]interface{} {
	for k, uv := range user {
		if uv == nil {
			delete(base, k)
			continue
		}
		um, uIsMap := uv.(map[string]interface{})
		bm, bIsMap := base[k].(map[string]interface{})
		if uIsMap && bIsMap {
			base[k] = coalesce(bm, um)
		} else {
			base[k] = uv
		}
	}
	return base
}

// applySet applies one --set argument: comma-separated key=value pairs with
// dotted keys ("\," and "\." escape). Like Helm's strvals, values are typed
// (true/false, integers, null) unless asString.
func applySet(values map[string]interface{}, arg string, asString bool) error {
	for _, pair := range splitEscaped(arg, ',') {
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return fmt.Errorf("--set %q: want key=value", pair)
		}
		keys := splitEscaped(pair[:eq], '.')
		raw := pair[eq+1:]
		var v interface{} = raw
		if !asString {
			v = typedValue(raw)
		}
		m := values
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]interface{})
			if !ok {
				next = map[string]interface{}{}
				m[k] = next
			}
			m = next
		}
		last := keys[len(keys)-1]
		if v == nil {
			delete(m, last)
		} else {
			m[last] = v
		}
	}
	return nil
}

func typedValue(s string) interface{} {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || !strings.HasPrefix(s, "0")) {
		return n
	}
	return s
}

func splitEscaped(s string, sep byte) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == sep {
			cur.WriteByte(sep)
			i++
			continue
		}
		if s[i] == sep {
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

// loadFiles reads the chart: templates/ by their Helm names
// ("<chart>/templates/x.yaml") and every other file into .Files.
func loadFiles(dir, chartName string) (Files, map[string]string, error) {
	files := Files{}
	templates := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			templates[chartName+"/"+rel] = string(data)
		} else {
			files[rel] = data
		}
		return nil
	})
	return files, templates, err
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var a []interface{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var a []interface{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func required(msg string, v interface{}) (interface{}, error) {
	if v == nil {
		return v, errors.New(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return v, errors.New(msg)
	}
	return v, nil
}

// funcMap is Sprig's text functions minus env/expandenv, plus Helm's own.
// include and tpl need the template set, so they are bound in render.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml":        toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"required":      required,
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		"include": func(string, interface{}) (string, error) { return "", errors.New("not bound") },
		"tpl":     func(string, interface{}) (string, error) { return "", errors.New("not bound") },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func render(templates map[string]string, chartName string, top map[string]interface{}) (string, error) {
	root := template.New("chart").Option("missingkey=zero")
	var includeDepth int
	funcs := funcMap()
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 100 {
			return "", fmt.Errorf("include %q: nested too deeply", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Option("missingkey=zero").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	root.Funcs(funcs)

	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := root.New(n).Parse(templates[n]); err != nil {
			return "", err
		}
	}

	var out strings.Builder
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		if ext := path.Ext(base); ext != ".yaml" && ext != ".yml" && ext != ".tpl" {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": n, "BasePath": chartName + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, n, data); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		// Like Helm, one "# Source" document per YAML document, and no
		// empty ones.
		for _, doc := range documentSeparator.Split(text, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			doc = strings.TrimLeft(doc, "\n")
			fmt.Fprintf(&out, "---\n# Source: %s\n%s", n, doc)
			if !strings.HasSuffix(doc, "\n") {
				out.WriteByte('\n')
			}
		}
	}
	return out.String(), nil
}
