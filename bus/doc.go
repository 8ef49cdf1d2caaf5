// Package bus is the Redis Pub/Sub transport that agents of a workflow execution use to talk to
// each other in "pubsub" communication mode.
//
// The wire protocol is fixed, because other tools read it (anyone can watch the traffic with
// `redis-cli PSUBSCRIBE 'agent:messages:*'`):
//
//   - an agent id is "node-{execution_id}-{node_id}" ([AgentID]);
//   - an agent listens on "agent:messages:{agent_id}" ([Channel]), and every agent may also
//     listen on [BroadcastChannel];
//   - every payload is one JSON [Message] object with exactly the fields id, type, from_agent,
//     to_agent, subject, content, priority, requires_response, reply_to, timestamp, expires_at
//     and metadata.
//
// A process holds one [Bus]. The Bus owns one go-redis client (for PUBLISH and other commands)
// and ONE subscriber connection shared by every agent of the process; one reader goroutine at a
// time receives from it and dispatches each message to the handlers registered for its channel,
// each in its own goroutine (the reader runs one handler itself after starting the next
// reader), so a slow agent never delays another. Request/reply ([Bus.Ask]) is built
// on top: the reader resolves a waiting Ask as soon as a response whose reply_to names it
// arrives on any subscribed channel.
//
// When the subscriber connection breaks, the Bus fails every Ask in flight with an error
// wrapping [ErrConnectionLost] at once, reconnects with backoff, re-subscribes every channel
// still registered and reports itself healthy again once Redis has confirmed them.
//
// Without an external Redis, [StartEmbedded] runs an in-process miniredis that speaks the same
// protocol.
//
// Worker mode adds Streams for work that must not be lost ([TaskQueue]) and [Register].
//
// The package imports no other package of the project.
package bus
