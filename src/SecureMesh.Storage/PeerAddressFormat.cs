using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>Checks and normalizes peer addresses: <c>host:port</c> (<c>[v6]:port</c> for IPv6, or a DNS name) or a TCP multiaddr.</summary>
public static class PeerAddressFormat
{
    /// <summary>
    /// Returns the canonical text of a peer address: <c>host:port</c> (IPv4, <c>[IPv6]</c> or a DNS name, kept as a
    /// name and resolved when dialled) or a TCP multiaddr (<c>/dns4/nas.local/tcp/4747/p2p/…</c>); throws
    /// <see cref="SecureMeshException"/> (InvalidInput) with the reason.
    /// </summary>
    public static string Normalize(string? address)
    {
        if (DialAddress.TryParse(address, out var parsed, out var error))
        {
            return parsed.Text;
        }
        const string Prefix = "invalid address";
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
            error.StartsWith(Prefix, StringComparison.Ordinal) ? "invalid peer address" + error[Prefix.Length..] : error);
    }

    /// <summary>
    /// As <see cref="Normalize(string?)"/> for an address of <paramref name="peer"/>: a multiaddr ending in
    /// <c>/p2p/</c> another peer's ID is refused (InvalidInput), since dialling it could only reach someone else. A
    /// relayed address (<c>[/ip4|ip6|dns/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit[/p2p/PEER]</c>) is taken as
    /// <see cref="NormalizeCircuit"/> takes it, with <c>/p2p/PEER</c> added when it ends at <c>/p2p-circuit</c>.
    /// </summary>
    public static string Normalize(string? address, PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (IsCircuit(address))
        {
            var trimmed = address!.Trim();
            try
            {
                return NormalizeCircuit(trimmed.EndsWith("/p2p-circuit", StringComparison.Ordinal) ? $"{trimmed}/p2p/{peer.Text}" : trimmed, peer, out _);
            }
            catch (SecureMeshException e)
            {
                const string Relayed = "invalid relayed address";
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                    e.Message.StartsWith(Relayed, StringComparison.Ordinal) ? "invalid peer address" + e.Message[Relayed.Length..] : "invalid peer address: " + e.Message);
            }
        }
        var text = Normalize(address);
        var named = DialAddress.Parse(text).PeerId;
        if (named is not null && !named.Equals(peer))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid peer address '{text}': it names peer {named.Text}, not {peer.Text}");
        }
        return text;
    }

    /// <summary>True for a relayed address (one with <c>/p2p-circuit</c>), well-formed or not.</summary>
    public static bool IsCircuit(string? address) => address is not null && address.Contains("/p2p-circuit", StringComparison.Ordinal);

    /// <summary>The relay of a relayed address of <paramref name="peer"/>; null when it is not one, or not a well-formed one (never throws).</summary>
    public static PeerId? RelayOf(string? address, PeerId peer)
    {
        if (!IsCircuit(address))
        {
            return null;
        }
        try
        {
            NormalizeCircuit(address!, peer, out var relay);
            return relay;
        }
        catch (SecureMeshException)
        {
            return null;
        }
    }

    /// <summary>
    /// The canonical text of a relayed address of <paramref name="peer"/>:
    /// <c>[/ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit/p2p/PEER</c>, with <paramref name="relay"/> the
    /// relay it goes through (a third peer). Anything else throws <see cref="SecureMeshException"/> (InvalidInput).
    /// </summary>
    public static string NormalizeCircuit(string? address, PeerId peer, out PeerId relay)
    {
        ArgumentNullException.ThrowIfNull(peer);
        if (!Multiaddr.TryParse(address?.Trim(), out var ma, out var error))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
        }
        var c = ma.Components;
        var at = c.Count - 2;
        var shape = at is 1 or 3 && c[at].Protocol == MultiaddrProtocol.P2pCircuit && c[at - 1].Protocol == MultiaddrProtocol.P2p
            && c[at + 1].Protocol == MultiaddrProtocol.P2p
            && (at == 1 || (c[1].Protocol == MultiaddrProtocol.Tcp && DialAddress.TryParse(string.Concat(c.Take(2).Select(x => x.ToString())), out _, out _)));
        if (!shape || !PeerId.TryParse(c[at - 1].Text, out var via, out _) || !PeerId.TryParse(c[at + 1].Text, out var target, out _))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                "invalid relayed address: expected [/ip4|ip6|dns/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit/p2p/PEERID");
        }
        if (!target.Equals(peer) || via.Equals(peer))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid relayed address for {peer.Text}: it must end in /p2p/{peer.Text} and go through a third peer");
        }
        relay = via;
        return ma.ToString();
    }

    /// <summary>
    /// The canonical text of an address without a port (<c>192.0.2.7</c>, <c>[2001:db8::7]</c>): where a connection
    /// came from, when its source port means nothing (an inbound connection's is ephemeral). Not dialable.
    /// </summary>
    public static string HostOnly(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        return a.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{new IPAddress(a.GetAddressBytes())}]" : a.ToString();
    }

    /// <summary>The canonical text of an endpoint (IPv4-mapped IPv6 addresses are written as IPv4).</summary>
    public static string FromEndPoint(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var address = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
        return address.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{new IPAddress(address.GetAddressBytes())}]:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{address}:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}";
    }
}
