package guard

import (
	"context"
	"time"
)

// A guard with Shared state enforces the blocks of its own table, which
// it keeps in step with the fleet's: a block it raises is written to the
// shared state first, and every SyncEvery it reads the fleet's set (when
// its version changed) and makes its table the same, so that a block
// raised or released on another node takes effect here within about a
// second without a round trip on every send.

// Run keeps the guard's blocks in step with the shared state until ctx is
// done. Without Shared state it returns at once.
func (g *Guard) Run(ctx context.Context) {
	if g.shared == nil {
		return
	}
	t := time.NewTicker(g.syncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, max(g.syncEvery, g.sharedTimeout))
		if err := g.Sync(sctx, time.Now()); err != nil && ctx.Err() == nil {
			g.sharedFailed("sync", err)
		}
		cancel()
	}
}

// Sync makes the guard's blocks those of the shared state at now: it
// writes the blocks it could not write when they were raised, adds the
// sends it refused since the last Sync to the fleet's counts, and takes
// the fleet's set when it changed. A guard starting calls it once before
// its first send, so that the blocks of the fleet (or of its own last
// run) apply at once. Without Shared state it does nothing.
func (g *Guard) Sync(ctx context.Context, now time.Time) error {
	if g.shared == nil {
		return nil
	}
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	c := g.cfg.Load()
	local := g.blocks.active(now.UnixNano())
	for _, b := range local {
		if b.pending.Load() {
			if _, err := g.shared.PutBlock(ctx, b.shared(), now, c.MaxBlocks); err != nil {
				return err
			}
			b.pending.Store(false)
		}
	}
	refused := map[string]int64{}
	for _, b := range local {
		if n := b.unflushed.Swap(0); n > 0 {
			refused[b.key] += n
		}
	}
	if err := g.syncConversion(ctx, c, now); err != nil {
		for _, b := range local { // counted at the next Sync
			b.unflushed.Add(refused[b.key])
		}
		return err
	}
	gen := g.blocks.gen.Load()
	version, blocks, changed, err := g.shared.SyncBlocks(ctx, g.version, refused, now)
	if err != nil {
		for _, b := range local { // counted at the next Sync
			if n := refused[b.key]; n > 0 {
				b.unflushed.Add(n)
				refused[b.key] = 0
			}
		}
		return err
	}
	if !changed {
		return nil
	}
	fleet := make(map[string]*block, len(blocks))
	for _, sb := range blocks {
		nb := blockOf(sb)
		if dropReason(c, nb, c.Mode == ModeEnforce) != "" {
			continue // meaningless under this node's configuration
		}
		fleet[sb.Key] = nb
	}
	gone, ok := g.blocks.reconcile(fleet, gen, now.UnixNano())
	if !ok {
		return nil // raised or released here meanwhile: read it all again next time
	}
	g.version = version
	for _, b := range gone {
		g.forgetCounts(b) // released elsewhere: the counts here would raise it again
		g.log.Info(logLifted, keyRule, b.info.Rule, keyRange, b.info.Range, keyClient, b.info.Client,
			keyRefused, b.refused.Load())
	}
	g.obs.GuardBlocks(int(g.blocks.n.Load()))
	return nil
}

// blockOf makes a local block of a shared one.
func blockOf(sb SharedBlock) *block {
	b := &block{key: sb.Key, info: sb.Block, digits: sb.Digits, level: sb.Level, monitor: sb.Monitor, id: sb.ID}
	b.info.Action, b.info.Refused = "", 0
	b.logAt.Store(time.Now().UnixNano())
	return b
}

// shared is b as the fleet shares it.
func (b *block) shared() SharedBlock {
	info := b.info
	info.Action, info.Refused = "", 0
	return SharedBlock{Key: b.key, Digits: b.digits, Level: b.level, Monitor: b.monitor, ID: b.id, Block: info}
}

// putShared writes a block this guard raised to the shared state, and
// returns the block active there under its key (another node's, raised
// first, or b). When the shared state does not answer, b stays pending:
// the next Sync writes it.
func (g *Guard) putShared(b *block, now time.Time, capacity int) *block {
	ctx, cancel := g.sharedCtx()
	defer cancel()
	sb, err := g.shared.PutBlock(ctx, b.shared(), now, capacity)
	if err != nil {
		g.sharedFailed("raise", err)
		b.pending.Store(true)
		return b
	}
	if sb.ID == b.id {
		return b
	}
	return blockOf(sb)
}

// deleteShared removes blocks from the shared state and returns what it
// removed, by key; ok is false when the shared state did not answer (the
// blocks go from this node only).
func (g *Guard) deleteShared(op string, keys []string) (removed map[string]SharedBlock, ok bool) {
	if g.shared == nil || len(keys) == 0 {
		return nil, true
	}
	ctx, cancel := g.sharedCtx()
	defer cancel()
	gone, err := g.shared.DeleteBlocks(ctx, keys)
	if err != nil {
		g.sharedFailed(op, err)
		return nil, false
	}
	out := make(map[string]SharedBlock, len(gone))
	for _, sb := range gone {
		out[sb.Key] = sb
	}
	return out, true
}

// sharedBlocks returns the fleet's blocks active at now as local blocks
// (nil, false when the shared state did not answer).
func (g *Guard) sharedBlocks(now time.Time) ([]SharedBlock, bool) {
	ctx, cancel := g.sharedCtx()
	defer cancel()
	_, blocks, _, err := g.shared.SyncBlocks(ctx, "", nil, now)
	if err != nil {
		g.sharedFailed("list", err)
		return nil, false
	}
	return blocks, true
}
