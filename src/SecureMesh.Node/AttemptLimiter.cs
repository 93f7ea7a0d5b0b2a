using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Node;

/// <summary>
/// Per-address budgets for inbound handshakes, checked before a single byte is read.
/// <para>
/// Handshake work: every inbound handshake takes one token from its address's bucket (a burst, refilled at a fixed
/// rate); an address with no token left is closed before the handshake, so one address can make the node do at most
/// the burst and then the refill rate of key agreement and signature work, however fast it connects. The token comes
/// back when the handshake proves a trusted key, so only work that gave no session costs: handshakes that failed or
/// timed out, strangers (unknown or pending keys) and blocked peers.
/// </para>
/// <para>
/// A NAT neighbour of a trusted peer (another device behind the same public address) is spared as far as an address
/// can tell them apart: a trusted key is judged by the key after the handshake and never refused for what another key
/// did from its address (no lockout is kept after a refusal: the bucket refills by itself, several handshakes a
/// second, which honest redialling, even a blocked peer's every second or two, never uses up); its own handshakes cost
/// nothing; and while a neighbour floods, the refill still lets a handshake through every
/// <see cref="HandshakeRefill"/>, so the trusted peer gets in on one of its retries. Only a blocked address range
/// refuses everyone behind it (that is what the user asked for).
/// </para>
/// <para>
/// Strangers also have a smaller budget for being recorded as pending (<see cref="TryTakeStrangerAttempt"/>), so
/// minted Peer IDs cannot grow the trust store. IPv6 addresses share their /64 (one site), IPv4-mapped IPv6 addresses
/// count as IPv4. Memory is bounded: at most <see cref="MaxTracked"/> addresses are remembered in each table.
/// </para>
/// </summary>
public sealed class AttemptLimiter
{
    /// <summary>Most addresses remembered at once in each table.</summary>
    public const int MaxTracked = 65_536;

    private readonly ConcurrentDictionary<IPAddress, Bucket> _handshakes = new();
    private readonly ConcurrentDictionary<IPAddress, Bucket> _strangers = new();
    private readonly TimeProvider _time;

    /// <summary>A limiter allowing each address <paramref name="handshakeBurst"/> handshakes that give no session, then one per <paramref name="handshakeRefill"/>.</summary>
    public AttemptLimiter(TimeProvider time, int handshakeBurst = 20, TimeSpan? handshakeRefill = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(handshakeBurst, 1);
        _time = time;
        HandshakeBurst = handshakeBurst;
        HandshakeRefill = handshakeRefill ?? TimeSpan.FromMilliseconds(500);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeRefill, TimeSpan.Zero, nameof(handshakeRefill));
    }

    /// <summary>Handshakes an address may start at once before the refill rate applies.</summary>
    public int HandshakeBurst { get; }

    /// <summary>Time for one handshake token to come back.</summary>
    public TimeSpan HandshakeRefill { get; }

    /// <summary>How many addresses have a handshake budget in use.</summary>
    public int Count => _handshakes.Count;

    /// <summary>
    /// Takes one handshake token for <paramref name="address"/>; false (with how long until the next token) when its
    /// budget is spent, and the connection must be closed before the handshake.
    /// </summary>
    public bool TryTakeHandshake(IPAddress address, out TimeSpan retryAfter) =>
        TryTake(_handshakes, Normalize(address), HandshakeBurst, HandshakeRefill, out retryAfter);

    /// <summary>Gives back the token of a handshake that proved a trusted key.</summary>
    public void RefundHandshake(IPAddress address)
    {
        var key = Normalize(address);
        var now = _time.GetUtcNow();
        _handshakes.AddOrUpdate(key,
            _ => new Bucket(HandshakeBurst, now),
            (_, old) =>
            {
                var current = Refill(old, HandshakeBurst, HandshakeRefill, now);
                return current with { Tokens = Math.Min(HandshakeBurst, current.Tokens + 1) };
            });
    }

    /// <summary>How long until <paramref name="address"/> may start another handshake (zero when it may now).</summary>
    public TimeSpan HandshakeRetryAfter(IPAddress address)
    {
        if (!_handshakes.TryGetValue(Normalize(address), out var bucket))
        {
            return TimeSpan.Zero;
        }
        var now = Refill(bucket, HandshakeBurst, HandshakeRefill, _time.GetUtcNow());
        return now.Tokens >= 1 ? TimeSpan.Zero : Until(now, HandshakeRefill, _time.GetUtcNow());
    }

    /// <summary>
    /// Takes one attempt from an address's budget for recording strangers (unknown or pending peers): a burst of
    /// <paramref name="burst"/>, refilled one per <paramref name="refill"/>. False when the budget is spent.
    /// </summary>
    public bool TryTakeStrangerAttempt(IPAddress address, int burst = 10, TimeSpan? refill = null) =>
        TryTake(_strangers, Normalize(address), burst, refill ?? TimeSpan.FromSeconds(5), out _);

    private bool TryTake(ConcurrentDictionary<IPAddress, Bucket> table, IPAddress key, int burst, TimeSpan refill, out TimeSpan retryAfter)
    {
        var now = _time.GetUtcNow();
        if (table.Count >= MaxTracked && !table.ContainsKey(key))
        {
            Prune(table, burst, refill, now);
        }
        var allowed = false;
        var updated = table.AddOrUpdate(key,
            _ =>
            {
                allowed = true;
                return new Bucket(burst - 1, now);
            },
            (_, old) =>
            {
                var current = Refill(old, burst, refill, now);
                allowed = current.Tokens >= 1;
                return allowed ? current with { Tokens = current.Tokens - 1 } : current;
            });
        retryAfter = allowed ? TimeSpan.Zero : Until(updated, refill, now);
        return allowed;
    }

    // Whole tokens come back one per refill period since the bucket was last counted; the remainder carries over.
    private static Bucket Refill(Bucket bucket, int burst, TimeSpan refill, DateTimeOffset now)
    {
        if (bucket.Tokens >= burst || now <= bucket.Since)
        {
            return bucket.Tokens >= burst ? new Bucket(burst, now) : bucket;
        }
        var periods = (now - bucket.Since).Ticks / refill.Ticks;
        if (periods == 0)
        {
            return bucket;
        }
        var tokens = (int)Math.Min(burst, bucket.Tokens + periods);
        return tokens >= burst ? new Bucket(burst, now) : new Bucket(tokens, bucket.Since + TimeSpan.FromTicks(refill.Ticks * periods));
    }

    private static TimeSpan Until(Bucket bucket, TimeSpan refill, DateTimeOffset now)
    {
        var next = bucket.Since + refill - now;
        return next > TimeSpan.Zero ? next : TimeSpan.Zero;
    }

    private static void Prune(ConcurrentDictionary<IPAddress, Bucket> table, int burst, TimeSpan refill, DateTimeOffset now)
    {
        // Full buckets carry no state worth keeping.
        foreach (var (address, bucket) in table)
        {
            if (Refill(bucket, burst, refill, now).Tokens >= burst)
            {
                table.TryRemove(address, out _);
            }
        }
        if (table.Count >= MaxTracked)
        {
            // Still full of spent budgets: forget the ones that refill soonest.
            foreach (var (address, _) in table.OrderBy(p => p.Value.Since).Take(MaxTracked / 4))
            {
                table.TryRemove(address, out _);
            }
        }
    }

    private static IPAddress Normalize(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }
        // One /64 is one site (SLAAC hands a host as many addresses in it as it likes).
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    private readonly record struct Bucket(int Tokens, DateTimeOffset Since);
}
