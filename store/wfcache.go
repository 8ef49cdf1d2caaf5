package store

import (
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// wfCache keeps parsed workflows by id, so that executing a workflow does
// not read and decode its document every time, which would be about a
// sixth of the CPU of POST /workflows/{id}/execute. Callers get clones (GetWorkflow's
// result is theirs to change). Entries are dropped by the writer after a
// transaction that changed the workflow has committed (see job.after);
// gen makes a reader that read the old document before that commit, but
// stores it after the drop, not store it: a reader keeps what it read only
// if no workflow was written since it started reading.
type wfCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]*workflow.Workflow
}

// maxCachedWorkflows bounds the cache; when full it starts over.
const maxCachedWorkflows = 1024

func newWFCache() *wfCache { return &wfCache{m: map[string]*workflow.Workflow{}} }

// get returns a clone of the cached workflow id, or nil and the generation
// to hand to put after reading it from the database.
func (c *wfCache) get(id string) (*workflow.Workflow, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.m[id]; ok {
		return w.Clone(), c.gen
	}
	return nil, c.gen
}

// put caches a clone of w, read after get returned gen, unless a workflow
// has been written since.
func (c *wfCache) put(w *workflow.Workflow, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxCachedWorkflows {
		clear(c.m)
	}
	// The cached copy keeps its graph, which the clones handed out share:
	// each execution of the workflow would otherwise work it out again
	// and hold its own.
	cw := w.Clone()
	cw.KeepGraph()
	c.m[w.ID] = cw
}

// drop forgets workflow id; the writer calls it after committing a change
// to it.
func (c *wfCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, id)
}
