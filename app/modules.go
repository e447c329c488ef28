package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// InitFunc initialises one module. It runs once per process, after every
// module the module depends on has been initialised.
type InitFunc func(ctx context.Context) error

// Manager holds the modules of a process: each is a name, an init function
// and the names of the modules it depends on. A group is a module without
// an init function: a name for a set of others (the role groups all, api,
// pipeline). The manager initialises a target's dependencies first, each
// module once, and refuses unknown names and cycles.
//
// It is the shape of the dskit modules manager Grafana Loki wires itself
// with, without services: what a module starts it hands to the process's
// Group.
type Manager struct {
	modules map[string]*module
	inited  map[string]bool
}

type module struct {
	init InitFunc // nil for a group
	deps []string
}

// NewManager returns a manager without modules.
func NewManager() *Manager {
	return &Manager{modules: map[string]*module{}, inited: map[string]bool{}}
}

// Register adds the module name, initialised by init after deps. A name
// registered twice is a programming error and panics.
func (m *Manager) Register(name string, init InitFunc, deps ...string) {
	if init == nil {
		panic(fmt.Sprintf("app: module %q registered without an init function (a set of modules is a group)", name))
	}
	m.add(name, &module{init: init, deps: deps})
}

// RegisterGroup adds the group name: initialising it initialises members.
func (m *Manager) RegisterGroup(name string, members ...string) {
	m.add(name, &module{deps: members})
}

func (m *Manager) add(name string, mod *module) {
	if _, ok := m.modules[name]; ok {
		panic(fmt.Sprintf("app: module %q registered twice", name))
	}
	m.modules[name] = mod
}

// IsGroup reports whether name is a registered group.
func (m *Manager) IsGroup(name string) bool {
	mod, ok := m.modules[name]
	return ok && mod.init == nil
}

// Has reports whether name is a registered module or group.
func (m *Manager) Has(name string) bool {
	_, ok := m.modules[name]
	return ok
}

// Members are the modules a group names, groups in it expanded, in their
// order of registration, without repeats. A module that is not a group is
// its own only member.
func (m *Manager) Members(name string) []string {
	var out []string
	var walk func(string)
	walk = func(n string) {
		mod, ok := m.modules[n]
		if !ok || mod.init != nil {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
			return
		}
		for _, d := range mod.deps {
			walk(d)
		}
	}
	walk(name)
	return out
}

// Order is the order in which targets and everything they depend on are
// initialised: every module after its dependencies, the dependencies in
// the order they are declared, each module once. Groups are left out. An
// unknown name and a cycle are errors naming the path to them.
func (m *Manager) Order(targets ...string) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order, path []string
	var visit func(name string) error
	visit = func(name string) error {
		mod, ok := m.modules[name]
		if !ok {
			if len(path) == 0 {
				return fmt.Errorf("unknown module %q", name)
			}
			return fmt.Errorf("unknown module %q (a dependency of %s)", name, strings.Join(path, " → "))
		}
		switch state[name] {
		case done:
			return nil
		case visiting:
			cycle := append(path[slices.Index(path, name):], name)
			return fmt.Errorf("modules depend on each other in a cycle: %s", strings.Join(cycle, " → "))
		}
		state[name] = visiting
		path = append(path, name)
		for _, d := range mod.deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		if mod.init != nil {
			order = append(order, name)
		}
		return nil
	}
	for _, t := range targets {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Init initialises targets and their dependencies in Order, skipping the
// modules an earlier Init initialised. It stops at the first init that
// fails and returns its error, wrapped with the module's name; the modules
// initialised so far stay initialised.
func (m *Manager) Init(ctx context.Context, targets ...string) error {
	order, err := m.Order(targets...)
	if err != nil {
		return err
	}
	for _, name := range order {
		if m.inited[name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("init %s: %w", name, err)
		}
		if err := m.modules[name].init(ctx); err != nil {
			return fmt.Errorf("init %s: %w", name, err)
		}
		m.inited[name] = true
	}
	return nil
}
