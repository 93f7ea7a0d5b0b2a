using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>Checks and normalizes peer addresses written as <c>host:port</c> (<c>[v6]:port</c> for IPv6).</summary>
public static class PeerAddressFormat
{
    /// <summary>Returns the canonical <c>host:port</c> text; throws <see cref="SecureMeshException"/> (InvalidInput) with the reason.</summary>
    public static string Normalize(string? address)
    {
        var shown = address is { Length: > 80 } ? address[..80] + "…" : address;
        var text = address?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            throw Invalid(shown, "empty");
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            throw Invalid(shown, "expected host:port, e.g. 192.0.2.7:4001 or [2001:db8::7]:4001");
        }
        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (portText.Length > 5 || !portText.All(char.IsAsciiDigit)
            || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw Invalid(shown, "port must be a number from 1 to 65535");
        }
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']') || !IPAddress.TryParse(host[1..^1], out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                throw Invalid(shown, "bracketed host must be an IPv6 address");
            }
            return FromEndPoint(new IPEndPoint(v6, port));
        }
        if (host.Contains(':', StringComparison.Ordinal))
        {
            throw Invalid(shown, "write IPv6 addresses in brackets, e.g. [2001:db8::7]:4001");
        }
        if (host.All(c => char.IsAsciiDigit(c) || c == '.'))
        {
            if (host.Count(c => c == '.') != 3 || !IPAddress.TryParse(host, out var v4))
            {
                throw Invalid(shown, "not a valid IPv4 address");
            }
            return FromEndPoint(new IPEndPoint(v4, port));
        }
        if (host.Length > 253 || host.StartsWith('.') || host.StartsWith('-')
            || !host.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-'))
        {
            throw Invalid(shown, "host must be an IP address or a DNS name");
        }
        return $"{host.ToLowerInvariant()}:{port.ToString(CultureInfo.InvariantCulture)}";
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

    private static SecureMeshException Invalid(string? shown, string why) =>
        new(SecureMeshErrorKind.InvalidInput, $"invalid peer address '{shown}': {why}");
}
