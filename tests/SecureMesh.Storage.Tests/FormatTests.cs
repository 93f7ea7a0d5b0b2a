using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;

namespace SecureMesh.Storage.Tests;

public sealed class FormatTests
{
    [Theory]
    [InlineData("10.0.0.0/8", "10.0.0.0/8", 8)]
    [InlineData("10.1.2.3/8", "10.0.0.0/8", 8)]
    [InlineData("192.0.2.1", "192.0.2.1/32", 32)]
    [InlineData("0.0.0.0/0", "0.0.0.0/0", 0)]
    [InlineData("2001:db8::/32", "2001:db8::/32", 32)]
    [InlineData("2001:DB8::1", "2001:db8::1/128", 128)]
    [InlineData("::/0", "::/0", 0)]
    [InlineData(" 172.16.0.0/12 ", "172.16.0.0/12", 12)]
    public void Cidr_parses_and_canonicalizes(string text, string canonical, int prefix)
    {
        var range = CidrRange.Parse(text);
        Assert.Equal(canonical, range.ToString());
        Assert.Equal(prefix, range.PrefixLength);
        Assert.Equal(range, CidrRange.Parse(canonical));
    }

    [Theory]
    [InlineData("10.0.0.0/33", "prefix length must be a number from 0 to 32")]
    [InlineData("::/129", "prefix length must be a number from 0 to 128")]
    [InlineData("1.2.3.4/-1", "prefix length")]
    [InlineData("1.2.3.4/+8", "prefix length")]
    [InlineData("1.2.3.4/8/8", "prefix length")]
    [InlineData("abc", "is not an IPv4 or IPv6 address")]
    [InlineData("1", "is not an IPv4 or IPv6 address")]
    [InlineData("256.0.0.0/8", "is not an IPv4 or IPv6 address")]
    [InlineData("fe80::1%eth0/64", "is not an IPv4 or IPv6 address")]
    [InlineData("   ", "empty")]
    public void Cidr_rejects_with_a_clear_reason(string text, string reason)
    {
        Assert.False(CidrRange.TryParse(text, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
        var e = Assert.Throws<SecureMeshException>(() => CidrRange.Parse(text));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
    }

    [Fact]
    public void Cidr_contains_respects_family_and_prefix()
    {
        var v4 = CidrRange.Parse("192.168.0.0/16");
        Assert.True(v4.Contains(IPAddress.Parse("192.168.255.255")));
        Assert.True(v4.Contains(IPAddress.Parse("::ffff:192.168.1.1")));
        Assert.False(v4.Contains(IPAddress.Parse("192.169.0.0")));
        Assert.False(v4.Contains(IPAddress.Parse("::c0a8:1")));
        Assert.True(CidrRange.Parse("0.0.0.0/0").Contains(IPAddress.Parse("8.8.8.8")));
        Assert.False(CidrRange.Parse("0.0.0.0/0").Contains(IPAddress.IPv6Loopback));
        Assert.True(CidrRange.Parse("::/0").Contains(IPAddress.IPv6Loopback));
        Assert.Equal(AddressFamily.InterNetworkV6, CidrRange.Parse("::1").Family);
        Assert.Equal([0xc0, 0xa8, 0, 0], CidrRange.Parse("192.168.7.7/16").NetworkBytes());
    }

    [Theory]
    [InlineData("b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst", true)]
    [InlineData("b3:aaaaaaaaaaaaaaaa", true)]
    [InlineData("b3:aaaaaaaaaaaaaaa", false)]
    [InlineData("b3:", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    [InlineData("B3:aaaaaaaaaaaaaaaaaaaa", false)]
    [InlineData("sha256:aaaaaaaaaaaaaaaaaaaa", false)]
    [InlineData("b3:aaaaaaaaaaaaaaaaaaa1", false)]
    [InlineData("b3:aaaaaaaaaaaaaaaaaaa=", false)]
    [InlineData("b3:AAAAAAAAAAAAAAAAAAAA", false)]
    public void Content_id_format(string? id, bool valid)
    {
        Assert.Equal(valid, ContentIdFormat.IsValid(id, out var error));
        Assert.Equal(valid, error is null);
        if (!valid)
        {
            Assert.StartsWith("invalid content ID", error, StringComparison.Ordinal);
            Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => ContentIdFormat.Validate(id)).Kind);
        }
    }

    [Fact]
    public void Content_id_length_limit()
    {
        Assert.True(ContentIdFormat.IsValid("b3:" + new string('z', 128), out _));
        Assert.False(ContentIdFormat.IsValid("b3:" + new string('z', 129), out _));
    }

    [Theory]
    [InlineData("192.0.2.1:4001", "192.0.2.1:4001")]
    [InlineData("[::1]:80", "[::1]:80")]
    [InlineData("[::ffff:192.0.2.1]:80", "192.0.2.1:80")]
    [InlineData("Node-1.Example.org:4001", "node-1.example.org:4001")]
    public void Peer_address_normalizes(string text, string expected) => Assert.Equal(expected, PeerAddressFormat.Normalize(text));

    [Fact]
    public void A_circuit_address_normalizes_with_its_relay_and_anything_else_is_refused()
    {
        using var peer = Core.Identity.NodeIdentity.Generate();
        using var relay = Core.Identity.NodeIdentity.Generate();
        var text = $" /ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId} ";
        Assert.Equal(text.Trim(), PeerAddressFormat.NormalizeCircuit(text, peer.PeerId, out var via));
        Assert.Equal(relay.PeerId, via);
        Assert.Equal($"/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}",
            PeerAddressFormat.NormalizeCircuit($"/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}", peer.PeerId, out _));
        foreach (var bad in new[]
        {
            $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit",                                 // no target
            $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{relay.PeerId}",              // another peer's
            $"/p2p/{peer.PeerId}/p2p-circuit/p2p/{peer.PeerId}",                                       // through itself
            $"/ip4/192.0.2.9/udp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}",               // no TCP to the relay
            $"/ip4/192.0.2.9/tcp/0/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}",                  // port 0
            $"/p2p/{relay.PeerId}/p2p-circuit/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}",       // two hops
            "192.0.2.1:4001",
            "/p2p-circuit",
        })
        {
            Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => PeerAddressFormat.NormalizeCircuit(bad, peer.PeerId, out _)).Kind);
        }
    }

    [Fact]
    public void A_typed_relayed_address_of_the_peer_is_taken_with_its_target_added_and_any_other_is_refused_as_a_peer_address()
    {
        using var peer = Core.Identity.NodeIdentity.Generate();
        using var relay = Core.Identity.NodeIdentity.Generate();
        var full = $"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}";
        Assert.Equal(full, PeerAddressFormat.Normalize($" {full} ", peer.PeerId));
        // Ending at /p2p-circuit (as a relay's own circuit listen address reads): the peer it is for is added.
        Assert.Equal(full, PeerAddressFormat.Normalize($"/ip4/192.0.2.9/tcp/4001/p2p/{relay.PeerId}/p2p-circuit", peer.PeerId));
        Assert.Equal($"/p2p/{relay.PeerId}/p2p-circuit/p2p/{peer.PeerId}", PeerAddressFormat.Normalize($"/p2p/{relay.PeerId}/p2p-circuit", peer.PeerId));
        foreach (var (bad, reason) in new[]
        {
            ($"/p2p/{relay.PeerId}/p2p-circuit/p2p/{relay.PeerId}", $"it must end in /p2p/{peer.PeerId}"),  // another peer's circuit
            ($"/p2p/{peer.PeerId}/p2p-circuit", "go through a third peer"),                                  // through itself
            ($"/ip4/192.0.2.9/udp/4001/p2p/{relay.PeerId}/p2p-circuit", "unknown protocol 'udp'"),       // no TCP to the relay
            ($"/p2p/{relay.PeerId}/p2p-circuit/p2p/{relay.PeerId}/p2p-circuit", "expected"),                 // two hops
            ("/p2p-circuit", "expected"),
            ("/p2p/notapeer/p2p-circuit", "invalid"),
        })
        {
            var e = Assert.Throws<SecureMeshException>(() => PeerAddressFormat.Normalize(bad, peer.PeerId));
            Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
            Assert.StartsWith("invalid peer address", e.Message, StringComparison.Ordinal);
            Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        }
        // Without a peer to check it against, a relayed address is still no address (where a connection came from, a listen address).
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => PeerAddressFormat.Normalize(full)).Kind);
    }
}
