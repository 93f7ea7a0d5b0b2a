using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using SecureMesh.Core.Addressing;

namespace SecureMesh.Node.Network;

/// <summary>Whether one of our addresses can be dialled from outside, as AutoNAT found out.</summary>
public enum Reachability
{
    /// <summary>Not tested yet, or no trusted peer could test it.</summary>
    Unknown,
    /// <summary>A trusted peer dialled it and our node answered.</summary>
    Reachable,
    /// <summary>A trusted peer tried and could not get through.</summary>
    Unreachable,
}

/// <summary>An address this node may be reachable at besides its listen addresses, and where it was learned.</summary>
/// <param name="Source"><c>mapped</c> (the router's port mapping) or <c>observed</c> (a trusted peer saw us there).</param>
public sealed record ExternalAddress(IPEndPoint EndPoint, string Source);

/// <summary>What this node knows of its own reach: the external addresses it learned, each address's reachability, and the port mapping's state.</summary>
public sealed class NodeReach
{
    private readonly ConcurrentDictionary<IPEndPoint, ExternalAddress> _external = new();
    private readonly ConcurrentDictionary<IPEndPoint, (Reachability State, DateTimeOffset At)> _reachability = new();

    /// <summary>The port mapping's state in a few words (<c>off</c> until it runs).</summary>
    public string PortMapping { get; internal set; } = "off";

    /// <summary>Raised when an external address is added or removed (the node then pushes identify to its peers).</summary>
    public event Action? AddressesChanged;

    /// <summary>Mapped addresses, then confirmed observed ones (only those AutoNAT found reachable are advertised).</summary>
    public IReadOnlyList<ExternalAddress> Advertised =>
    [
        .. _external.Values.Where(a => a.Source == "mapped" || StateOf(a.EndPoint) == Reachability.Reachable)
            .OrderBy(a => a.Source == "mapped" ? 0 : 1).ThenBy(a => a.EndPoint.ToString(), StringComparer.Ordinal),
    ];

    /// <summary>Every external address learned, confirmed or not.</summary>
    public IReadOnlyList<ExternalAddress> External => [.. _external.Values.OrderBy(a => a.EndPoint.ToString(), StringComparer.Ordinal)];

    /// <summary>Each tested or learned address with its state.</summary>
    public IReadOnlyList<(IPEndPoint Address, Reachability State, DateTimeOffset? At)> States =>
    [
        .. _external.Keys.Union(_reachability.Keys).Distinct()
            .Select(e => _reachability.TryGetValue(e, out var s) ? (e, s.State, (DateTimeOffset?)s.At) : (e, Reachability.Unknown, null))
            .OrderBy(t => t.e.ToString(), StringComparer.Ordinal),
    ];

    /// <summary>Most observed addresses kept: a trusted peer's identify should not grow this without bound.</summary>
    internal const int MaxObserved = 16;

    public Reachability StateOf(IPEndPoint address) => _reachability.TryGetValue(address, out var s) ? s.State : Reachability.Unknown;

    internal void SetMapped(IPEndPoint? external, IPEndPoint? previous)
    {
        var changed = false;
        if (previous is not null && !previous.Equals(external))
        {
            changed |= _external.TryRemove(previous, out _);
            _reachability.TryRemove(previous, out _);
        }
        if (external is not null)
        {
            var old = _external.GetValueOrDefault(external);
            _external[external] = new ExternalAddress(external, "mapped");
            changed |= old is null || old.Source != "mapped";
        }
        if (changed)
        {
            AddressesChanged?.Invoke();
        }
    }

    /// <summary>A trusted peer says it sees us at <paramref name="observed"/> (TCP only; bounded).</summary>
    internal void AddObserved(IPEndPoint observed)
    {
        if (_external.ContainsKey(observed) || _external.Count(a => a.Value.Source == "observed") >= MaxObserved)
        {
            return;
        }
        _external.TryAdd(observed, new ExternalAddress(observed, "observed"));
    }

    internal void SetState(IPEndPoint address, Reachability state, DateTimeOffset at)
    {
        var before = StateOf(address);
        _reachability[address] = (state, at);
        if (before != state && _external.TryGetValue(address, out var known) && known.Source == "observed")
        {
            AddressesChanged?.Invoke();
        }
    }

    /// <summary>The TCP endpoint of a multiaddr <c>/ip4|ip6/…/tcp/…[/p2p/…]</c>; null for anything else (names, circuits).</summary>
    public static IPEndPoint? TcpEndPoint(Multiaddr address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var c = address.Components;
        if (c.Count is < 2 or > 3 || c[1].Protocol != MultiaddrProtocol.Tcp || c[1].Value.Length != 2
            || (c.Count == 3 && c[2].Protocol != MultiaddrProtocol.P2p))
        {
            return null;
        }
        var port = BinaryPrimitives.ReadUInt16BigEndian(c[1].Value);
        return c[0].Protocol switch
        {
            MultiaddrProtocol.Ip4 when c[0].Value.Length == 4 => new IPEndPoint(new IPAddress(c[0].Value), port),
            MultiaddrProtocol.Ip6 when c[0].Value.Length == 16 => new IPEndPoint(new IPAddress(c[0].Value), port),
            _ => null,
        };
    }

    /// <summary>The TCP endpoints among binary multiaddrs from a peer (identify's listen addresses, an exchange answer); the rest is skipped.</summary>
    public static IEnumerable<IPEndPoint> TcpEndPoints(IEnumerable<byte[]> multiaddrs) =>
        multiaddrs.Select(bytes => Multiaddr.TryFromBytes(bytes, out var m, out _) ? TcpEndPoint(m) : null).OfType<IPEndPoint>();

    /// <summary>The name of a state in <c>status --json</c>.</summary>
    public static string Name(Reachability state) => state switch
    {
        Reachability.Reachable => "reachable",
        Reachability.Unreachable => "unreachable",
        _ => "unknown",
    };
}
