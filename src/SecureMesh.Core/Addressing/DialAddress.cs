using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Addressing;

/// <summary>
/// An address a user gives for a peer or for listening: <c>HOST:PORT</c> (an IPv4 address, <c>[IPv6]:PORT</c> or a DNS
/// name) or a TCP multiaddr (<c>/ip4|ip6|dns|dns4|dns6/…/tcp/PORT</c>, optionally ending <c>/p2p/PEERID</c>).
/// Parsing never touches the network: a name is kept as typed (in canonical form) and resolved when it is dialled,
/// so a peer whose address changes behind its name is still found.
/// </summary>
public sealed class DialAddress
{
    /// <summary>Longest <c>HOST:PORT</c> text accepted.</summary>
    public const int MaxHostPortLength = Multiaddr.MaxDnsNameLength + 8;

    private DialAddress(string host, IPAddress? ip, int port, AddressFamily family, PeerId? peerId, string text, Multiaddr? multiaddr)
    {
        Host = host;
        Ip = ip;
        Port = port;
        Family = family;
        PeerId = peerId;
        Text = text;
        Multiaddr = multiaddr;
    }

    /// <summary>The host: an IP address's text or a DNS name.</summary>
    public string Host { get; }

    /// <summary>The IP address when the host is one; null for a DNS name.</summary>
    public IPAddress? Ip { get; }

    /// <summary>The TCP port.</summary>
    public int Port { get; }

    /// <summary>Which addresses a name may resolve to: <see cref="AddressFamily.Unspecified"/> for both, or only IPv4 (<c>/dns4</c>) or IPv6 (<c>/dns6</c>).</summary>
    public AddressFamily Family { get; }

    /// <summary>The peer named by a trailing <c>/p2p/…</c>, if any.</summary>
    public PeerId? PeerId { get; }

    /// <summary>The multiaddr, when the address was given as one.</summary>
    public Multiaddr? Multiaddr { get; }

    /// <summary>The canonical text (lower-case names, IPv4-mapped addresses as IPv4 in <c>HOST:PORT</c>); what is stored.</summary>
    public string Text { get; }

    /// <inheritdoc/>
    public override string ToString() => Text;

    /// <summary>Parses an address; throws <see cref="SecureMeshException"/> (InvalidInput) with the reason.</summary>
    public static DialAddress Parse(string? text, bool allowPortZero = false) =>
        TryParse(text, out var result, out var error, allowPortZero)
            ? result
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);

    /// <summary>Parses an address, giving the reason on failure. Port 0 is refused unless <paramref name="allowPortZero"/> (listening on any free port).</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out DialAddress? result, out string error, bool allowPortZero = false)
    {
        result = null;
        var trimmed = text?.Trim();
        if (string.IsNullOrEmpty(trimmed))
        {
            error = "invalid address: empty";
            return false;
        }
        return trimmed[0] == '/'
            ? TryFromMultiaddr(trimmed, out result, out error, allowPortZero)
            : TryFromHostPort(trimmed, out result, out error, allowPortZero);
    }

    /// <summary>
    /// The TCP endpoints to try, in order: the address itself, or every address the name resolves to (of the allowed
    /// family), IPv4 first (loopback and LAN peers are found there more often). Throws <see cref="SecureMeshException"/>
    /// (Network) when a name does not resolve.
    /// </summary>
    public async Task<IReadOnlyList<IPEndPoint>> ResolveAsync(CancellationToken cancellationToken)
    {
        if (Ip is not null)
        {
            return [new IPEndPoint(Ip, Port)];
        }
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(Host, Family, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"cannot resolve {Host}: {e.Message}", e);
        }
        var endPoints = addresses
            .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            .Where(a => Family == AddressFamily.Unspecified || a.AddressFamily == Family)
            .Distinct()
            .OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1)
            .Select(a => new IPEndPoint(a, Port))
            .ToList();
        return endPoints.Count > 0
            ? endPoints
            : throw new SecureMeshException(SecureMeshErrorKind.Network, $"{Host} has no {(Family == AddressFamily.InterNetworkV6 ? "IPv6" : Family == AddressFamily.InterNetwork ? "IPv4" : "IP")} address");
    }

    private static bool TryFromMultiaddr(string text, [NotNullWhen(true)] out DialAddress? result, out string error, bool allowPortZero)
    {
        result = null;
        if (!Multiaddr.TryParse(text, out var ma, out error))
        {
            const string Prefix = "invalid multiaddr";
            error = error.StartsWith(Prefix, StringComparison.Ordinal) ? "invalid address" + error[Prefix.Length..] : error;
            return false;
        }
        var c = ma.Components;
        var shown = Shorten(ma.ToString());
        if (c.Count < 2 || c[1].Protocol != MultiaddrProtocol.Tcp
            || c[0].Protocol is not (MultiaddrProtocol.Ip4 or MultiaddrProtocol.Ip6 or MultiaddrProtocol.Dns or MultiaddrProtocol.Dns4 or MultiaddrProtocol.Dns6)
            || c.Count > 3 || (c.Count == 3 && c[2].Protocol != MultiaddrProtocol.P2p))
        {
            error = c.Any(x => x.Protocol == MultiaddrProtocol.P2pCircuit)
                ? $"invalid address {shown}: relayed (/p2p-circuit) addresses are not supported yet"
                : $"invalid address {shown}: expected /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT, optionally followed by /p2p/PEERID";
            return false;
        }
        var port = int.Parse(c[1].Text!, NumberStyles.None, CultureInfo.InvariantCulture);
        if (port == 0 && !allowPortZero)
        {
            error = $"invalid address {shown}: the port must not be 0";
            return false;
        }
        PeerId? peer = null;
        if (c.Count == 3)
        {
            peer = ma.LastPeerId(out var other);
            if (other)
            {
                error = $"invalid address {shown}: /p2p must name an Ed25519 Peer ID (12D3KooW…)";
                return false;
            }
        }
        var host = c[0].Text!;
        IPAddress? ip = null;
        var family = AddressFamily.Unspecified;
        switch (c[0].Protocol)
        {
            case MultiaddrProtocol.Ip4 or MultiaddrProtocol.Ip6:
                ip = new IPAddress(c[0].Value);
                break;
            case MultiaddrProtocol.Dns4:
                family = AddressFamily.InterNetwork;
                break;
            case MultiaddrProtocol.Dns6:
                family = AddressFamily.InterNetworkV6;
                break;
        }
        result = new DialAddress(host, ip, port, family, peer, ma.ToString(), ma);
        error = string.Empty;
        return true;
    }

    private static bool TryFromHostPort(string text, [NotNullWhen(true)] out DialAddress? result, out string error, bool allowPortZero)
    {
        result = null;
        var shown = Shorten(text);
        if (text.Length > MaxHostPortLength)
        {
            error = $"invalid address {shown}: longer than {MaxHostPortLength} characters";
            return false;
        }
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            error = $"invalid address {shown}: expected HOST:PORT (192.0.2.7:4747, [2001:db8::7]:4747, nas.local:4747) or a multiaddr (/ip4/192.0.2.7/tcp/4747)";
            return false;
        }
        var host = text[..colon];
        var portText = text[(colon + 1)..];
        if (portText.Length > 5 || !portText.All(char.IsAsciiDigit)
            || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535 || (port == 0 && !allowPortZero))
        {
            error = $"invalid address {shown}: the port must be a number from {(allowPortZero ? 0 : 1)} to 65535";
            return false;
        }
        IPAddress? ip;
        if (host.StartsWith('['))
        {
            if (!host.EndsWith(']') || host.Contains('%', StringComparison.Ordinal)
                || !IPAddress.TryParse(host[1..^1], out ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"invalid address {shown}: a bracketed host must be an IPv6 address";
                return false;
            }
        }
        else if (host.Contains(':', StringComparison.Ordinal))
        {
            error = $"invalid address {shown}: write IPv6 addresses in brackets, e.g. [2001:db8::7]:4747";
            return false;
        }
        else if (host.All(ch => char.IsAsciiDigit(ch) || ch == '.'))
        {
            if (host.Count(ch => ch == '.') != 3 || !IPAddress.TryParse(host, out ip))
            {
                error = $"invalid address {shown}: not a valid IPv4 address";
                return false;
            }
        }
        else
        {
            if (!Multiaddr.IsDnsName(host, out var why))
            {
                error = $"invalid address {shown}: the host must be an IP address or a DNS name ({why})";
                return false;
            }
            var name = host.ToLowerInvariant();
            result = new DialAddress(name, null, port, AddressFamily.Unspecified, null, $"{name}:{port.ToString(CultureInfo.InvariantCulture)}", null);
            error = string.Empty;
            return true;
        }
        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }
        var canonical = ip.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{ip}]:{port.ToString(CultureInfo.InvariantCulture)}"
            : $"{ip}:{port.ToString(CultureInfo.InvariantCulture)}";
        result = new DialAddress(ip.ToString(), ip, port, ip.AddressFamily, null, canonical, null);
        error = string.Empty;
        return true;
    }

    private static string Shorten(string text)
    {
        var clean = new string([.. text.Take(80).Select(c => char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' ? '?' : c)]);
        return text.Length > 80 ? $"'{clean}…'" : $"'{clean}'";
    }
}
