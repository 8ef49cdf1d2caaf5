package executor

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/bus"
	"github.com/switchboard-dev/switchboard/workflow"
)

// An agent hosted by a worker builds its system prompt on the worker, so
// that answering a question takes no round trip to the server: the static
// part from the workflow its host task carries (buildStaticPrompt, as the
// server builds it), and the execution's broadcasts, which the server keeps
// and sends, as a notification on the worker's channel, to every worker
// hosting agents of the execution each time it records one, and to a worker
// that confirms agents it was sent after the first one. A notification
// holds the whole list, so a lost or late one is made good by the next;
// and since Pub/Sub may lose the last one, every node's run task (on a
// stream, which loses nothing) carries the list too. A worker keeps the
// longest list it has had from the execution's server. As in the server, where the
// broadcast of an agent on a worker arrives with that agent's events, a
// broadcast made at the moment a question is asked may or may not be in the
// prompt of its answer.

// noteBroadcasts is the notification (server → worker) that carries an
// execution's broadcasts so far.
const noteBroadcasts = "broadcasts"

// workerAgentID is the agent id of the worker named name: the server's
// notifications to it go to bus.Channel(workerAgentID(name)).
func workerAgentID(name string) string { return "worker-" + name }

// sendBroadcasts sends the execution's broadcasts to the workers hosting
// its agents (only that one, when only is not ""), all at once: it runs in
// the loop that applies every execution's results. Best effort: a worker
// that misses a list gets the next, or the one in its next run task.
func (pl *placement) sendBroadcasts(only string) {
	x := pl.x
	list := x.broadcastsSoFar()
	if len(list) == 0 {
		return
	}
	workers := map[string]bool{}
	pl.mu.Lock()
	for _, a := range pl.agents {
		if a.worker != "" && (only == "" || a.worker == only) {
			workers[a.worker] = true
		}
	}
	pl.mu.Unlock()
	if len(workers) == 0 {
		return
	}
	data, err := json.Marshal(list)
	if err != nil {
		pl.p.logger.Warn("encoding the broadcasts for the workers failed", "execution_id", x.rec.ID, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		m := bus.NewQuery(pl.p.self, workerAgentID(w), noteBroadcasts, map[string]any{rpcArgs: string(data)}, bus.Meta(x.rec.ID, x.wf.ID), 0)
		m.Type, m.RequiresResponse = bus.TypeNotification, false
		wg.Go(func() {
			if err := pl.p.ps.Publish(ctx, bus.Channel(workerAgentID(w)), m); err != nil {
				pl.p.logger.Debug("sending the broadcasts to a worker failed", "worker", w, "execution_id", x.rec.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// broadcastsSoFar are the execution's broadcasts, in order.
func (x *execution) broadcastsSoFar() []broadcast {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.broadcasts)
}

// onBroadcasts takes the server's list of an execution's broadcasts, from
// the server that placed its agents here: anyone can publish on the
// worker's channel.
func (w *Worker) onBroadcasts(m bus.Message) {
	args, _ := m.QueryContext()[rpcArgs].(string)
	var list []broadcast
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		w.logger.Warn("ignored broadcasts that cannot be read", "execution_id", m.ExecutionID(), "id", m.ID, "err", err)
		return
	}
	w.mu.Lock()
	he := w.hosted[m.ExecutionID()]
	w.mu.Unlock()
	if he == nil {
		return // released, or not hosted yet: the server sends them again once it is
	}
	if m.FromAgent != he.server {
		w.logger.Warn("ignored broadcasts not sent by the execution's server", "execution_id", he.id, "id", m.ID, "from_agent", m.FromAgent)
		return
	}
	he.takeBroadcasts(list)
}

// takeBroadcasts keeps list when it is longer than what the worker has:
// lists come whole, and a late one may be shorter.
func (he *hostedExec) takeBroadcasts(list []broadcast) {
	he.mu.Lock()
	defer he.mu.Unlock()
	if len(list) > len(he.broadcasts) {
		he.broadcasts = list
	}
}

// systemPrompt is node's system message, as the server would build it.
func (t remoteTeam) systemPrompt(node *workflow.Node) string {
	he := t.he
	cfg := he.aiOf(node)
	he.mu.Lock()
	defer he.mu.Unlock()
	static, ok := he.prompts[node.ID]
	if !ok {
		static = buildStaticPrompt(he.wf, he.aiOf, node)
		if he.prompts == nil {
			he.prompts = map[string]string{}
		}
		he.prompts[node.ID] = static
	}
	if !cfg.CanCommunicate {
		return strings.TrimSpace(static)
	}
	return withBroadcasts(static, node, he.broadcasts)
}

// aiOf is the config of node n of the hosted workflow.
func (he *hostedExec) aiOf(n *workflow.Node) *workflow.AIConfig {
	if i, ok := he.graph.Index[n.ID]; ok {
		return &he.graph.AI[i]
	}
	cfg := n.AI()
	return &cfg
}
