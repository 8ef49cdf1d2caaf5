package executor

import (
	"sync"

	"github.com/switchboard-dev/switchboard/workflow"
)

// hub fans events out to live subscribers, per execution or for all ("").
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan workflow.Event]struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan workflow.Event]struct{}{}} }

func (h *hub) subscribe(id string) (<-chan workflow.Event, func()) {
	ch := make(chan workflow.Event, 512)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan workflow.Event]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			if _, ok := h.subs[id][ch]; ok {
				delete(h.subs[id], ch)
				close(ch)
			}
			if len(h.subs[id]) == 0 {
				delete(h.subs, id)
			}
			h.mu.Unlock()
		})
	}
}

// publish delivers ev without blocking: a full subscriber misses deltas
// always, and other events only when it is hopelessly behind.
func (h *hub) publish(ev workflow.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range [2]string{ev.ExecutionID, ""} {
		for ch := range h.subs[id] {
			if ev.Kind == workflow.EventDelta && len(ch) > cap(ch)/2 {
				continue
			}
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// end closes the subscriptions of a finished execution.
func (h *hub) end(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		close(ch)
	}
	delete(h.subs, id)
}
