// Package guard owns the SMS-pumping guard: the rules that decide, before
// an OTP is sent, whether a send looks like toll fraud (budgets per client
// and country, velocity of sends to a number range against its own
// baseline, sends to consecutive-looking numbers, conversion of sends into
// verifications per range and per carrier, operator safe and block lists),
// the blocks those rules raise, and the observer port through which its
// decisions are counted. Its state is bounded whatever callers send: fixed
// size per range, a capped LRU of ranges, a capped block table and a
// fixed-size set of recently verified numbers. A fleet's nodes share
// their blocks, budgets, verified numbers and the counts of suspect ranges
// through the Shared port (the fleet backend implements it); without it
// the guard keeps everything in its process. It imports no package of
// ours.
package guard
