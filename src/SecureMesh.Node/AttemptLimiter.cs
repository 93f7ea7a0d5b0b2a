using System.Collections.Concurrent;
using System.Net;

namespace SecureMesh.Node;

/// <summary>
/// Rate-limits connection attempts from addresses that were refused (blocked peers, blocked ranges, strangers over
/// their budget): each refusal doubles the time the address must wait, up to a cap. A failed handshake is not a
/// refusal here (a peer behind the same NAT would pay for it): those are bounded by the listener's caps on handshakes
/// in progress, per address and in total, and by the handshake deadline.
/// Memory is bounded: at most <see cref="MaxTracked"/> addresses are remembered.
/// </summary>
public sealed class AttemptLimiter
{
    /// <summary>Most addresses remembered at once; the oldest penalties are dropped first.</summary>
    public const int MaxTracked = 65_536;

    private readonly ConcurrentDictionary<IPAddress, Penalty> _penalties = new();
    private readonly ConcurrentDictionary<IPAddress, Budget> _budgets = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _first;
    private readonly TimeSpan _max;

    /// <summary>Creates a limiter whose first penalty is <paramref name="first"/>, doubling to <paramref name="max"/>.</summary>
    public AttemptLimiter(TimeProvider time, TimeSpan? first = null, TimeSpan? max = null)
    {
        _time = time;
        _first = first ?? TimeSpan.FromSeconds(2);
        _max = max ?? TimeSpan.FromMinutes(10);
    }

    /// <summary>True when <paramref name="address"/> may try now.</summary>
    public bool IsAllowed(IPAddress address) =>
        !_penalties.TryGetValue(Normalize(address), out var penalty) || _time.GetUtcNow() >= penalty.Until;

    /// <summary>Records a refusal; returns how long the address must now wait.</summary>
    public TimeSpan Penalize(IPAddress address)
    {
        var key = Normalize(address);
        var now = _time.GetUtcNow();
        if (_penalties.Count >= MaxTracked)
        {
            Prune(now);
        }
        var updated = _penalties.AddOrUpdate(key,
            _ => new Penalty(now + _first, _first),
            (_, old) =>
            {
                var next = old.Until < now - _max ? _first : TimeSpan.FromTicks(Math.Min(old.Wait.Ticks * 2, _max.Ticks));
                return new Penalty(now + next, next);
            });
        return updated.Wait;
    }

    /// <summary>
    /// Takes one attempt from an address's budget for handshakes by strangers (unknown or pending peers): a burst of
    /// <paramref name="burst"/>, refilled one per <paramref name="refill"/>. False when the budget is spent.
    /// </summary>
    public bool TryTakeStrangerAttempt(IPAddress address, int burst = 10, TimeSpan? refill = null)
    {
        var key = Normalize(address);
        var now = _time.GetUtcNow();
        var every = refill ?? TimeSpan.FromSeconds(5);
        if (_budgets.Count >= MaxTracked)
        {
            _budgets.Clear();
        }
        var allowed = false;
        _budgets.AddOrUpdate(key,
            _ =>
            {
                allowed = true;
                return new Budget(burst - 1, now);
            },
            (_, old) =>
            {
                var refilled = Math.Min(burst, old.Tokens + (int)((now - old.Since).Ticks / every.Ticks));
                var since = refilled == burst ? now : old.Since + TimeSpan.FromTicks(every.Ticks * ((now - old.Since).Ticks / every.Ticks));
                allowed = refilled > 0;
                return new Budget(allowed ? refilled - 1 : 0, since);
            });
        return allowed;
    }

    /// <summary>Forgets an address (after an unblock).</summary>
    public void Clear(IPAddress address) => _penalties.TryRemove(Normalize(address), out _);

    /// <summary>How many addresses are tracked.</summary>
    public int Count => _penalties.Count;

    private void Prune(DateTimeOffset now)
    {
        foreach (var (address, penalty) in _penalties)
        {
            if (penalty.Until < now)
            {
                _penalties.TryRemove(address, out _);
            }
        }
        if (_penalties.Count >= MaxTracked)
        {
            // Still full of live penalties: drop the ones ending soonest.
            foreach (var (address, _) in _penalties.OrderBy(p => p.Value.Until).Take(MaxTracked / 4))
            {
                _penalties.TryRemove(address, out _);
            }
        }
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private readonly record struct Penalty(DateTimeOffset Until, TimeSpan Wait);

    private readonly record struct Budget(int Tokens, DateTimeOffset Since);
}
