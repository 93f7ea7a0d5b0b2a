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
    /// <c>/p2p/</c> another peer's ID is refused (InvalidInput), since dialling it could only reach someone else.
    /// </summary>
    public static string Normalize(string? address, PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var text = Normalize(address);
        var named = DialAddress.Parse(text).PeerId;
        if (named is not null && !named.Equals(peer))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid peer address '{text}': it names peer {named.Text}, not {peer.Text}");
        }
        return text;
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
