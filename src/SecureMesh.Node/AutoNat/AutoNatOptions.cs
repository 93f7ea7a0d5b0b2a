using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Node.AutoNat;

/// <summary>How AutoNAT v2 runs on this node, as client and as server (for trusted peers only).</summary>
internal sealed record AutoNatOptions
{
    /// <summary>
    /// Test and LAN seam: dial and ask about private, loopback and link-local addresses too. The spec says neither
    /// side should (they say nothing about the public internet); off by default.
    /// </summary>
    public bool AllowPrivateAddresses { get; init; }

    /// <summary>
    /// Whether the server dials an address whose IP is not the one it sees the requester at (after the amplification
    /// guard's payment). Off by default: a trusted peer cannot point this node at a third party at all.
    /// </summary>
    public bool AllowOtherIp { get; init; }

    /// <summary>What the amplification guard asks for (the spec: 30k to 100k).</summary>
    public ulong DialDataBytes { get; init; } = 30_000;

    /// <summary>The most dial data the client pays to one server for one request.</summary>
    public ulong MaxDialDataToPay { get; init; } = 100_000;

    /// <summary>Requests one peer may make per <see cref="RateWindow"/>; more are rejected (E_REQUEST_REJECTED).</summary>
    public int RequestsPerPeer { get; init; } = 12;

    /// <summary>Requests from all peers together per <see cref="RateWindow"/>.</summary>
    public int RequestsTotal { get; init; } = 60;

    public TimeSpan RateWindow { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a dial back may take (connect, handshake, nonce) and how long the client waits for the answer.</summary>
    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the client re-checks its addresses.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The wait before the first check after a start (identify must have told us our observed addresses).</summary>
    public TimeSpan FirstCheck { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most trusted peers asked about one address in one round.</summary>
    public int ServersPerAddress { get; init; } = 3;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>True for addresses the public internet cannot route to: RFC 1918, CGNAT, loopback, link-local, ULA.</summary>
    public static bool IsPrivate(IPAddress address)
    {
        var a = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        if (IPAddress.IsLoopback(a) || a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any))
        {
            return true;
        }
        if (a.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = a.GetAddressBytes();
            return b[0] == 10
                || (b[0] == 172 && (b[1] & 0xf0) == 16)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 169 && b[1] == 254)
                || (b[0] == 100 && (b[1] & 0xc0) == 64);
        }
        return a.IsIPv6LinkLocal || a.IsIPv6SiteLocal || a.IsIPv6UniqueLocal;
    }
}
