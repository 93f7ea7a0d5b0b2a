using System.Net;

namespace SecureMesh.Storage.Tests;

/// <summary>
/// Issue 14, finding 3: an IPv4 address has two spellings, and a block written in the IPv4-mapped IPv6 one
/// (<c>::ffff:127.0.0.5</c>) was accepted and listed but never matched a connection from 127.0.0.5.
/// </summary>
public sealed class MappedAddressTests
{
    [Theory]
    [InlineData("::ffff:127.0.0.5", "127.0.0.5/32")]
    [InlineData("::FFFF:127.0.0.5/128", "127.0.0.5/32")]
    [InlineData("::ffff:10.9.8.7/104", "10.0.0.0/8")]
    [InlineData("::ffff:0:0/96", "0.0.0.0/0")]
    public void A_mapped_range_is_stored_and_listed_as_the_ipv4_range_it_means(string written, string canonical)
    {
        Assert.Equal(canonical, CidrRange.Parse(written).ToString());
        Assert.Equal(CidrRange.Parse(canonical), CidrRange.Parse(written));
    }

    [Fact]
    public void A_mapped_block_matches_the_plain_ipv4_address_and_the_mapped_one()
    {
        using var t = new TestDatabase();
        var peer = TestDatabase.NewPeer();
        t.Trust.AddPeer(peer, trusted: true);
        Assert.Equal("127.0.0.5/32", t.Trust.BlockAddress("::ffff:127.0.0.5").Cidr);
        Assert.Equal("192.0.2.0/24", t.Trust.BlockAddress("::ffff:192.0.2.0/120").Cidr);
        Assert.Equal("127.0.0.5/32", Assert.Single(t.Trust.ListBlocklist().Addresses, a => a.Cidr.StartsWith("127.", StringComparison.Ordinal)).Cidr);

        Assert.True(t.Trust.IsAddressBlocked(IPAddress.Parse("127.0.0.5")));
        Assert.True(t.Trust.IsAddressBlocked(IPAddress.Parse("::ffff:127.0.0.5")));
        Assert.False(t.Trust.IsAddressBlocked(IPAddress.Parse("127.0.0.6")));
        Assert.Equal(AuthorizationDecision.BlockedAddress, t.Trust.Authorize(peer, IPAddress.Parse("192.0.2.200")));
        Assert.Equal(AuthorizationDecision.Trusted, t.Trust.Authorize(peer, IPAddress.Parse("192.0.3.1")));

        // The same range in the other spelling is the same block.
        var again = Assert.Throws<Core.SecureMeshException>(() => t.Trust.BlockAddress("127.0.0.5"));
        Assert.Equal(Core.SecureMeshErrorKind.Conflict, again.Kind);
        t.Trust.UnblockAddress("127.0.0.5/32");
        Assert.False(t.Trust.IsAddressBlocked(IPAddress.Parse("127.0.0.5")));
    }

    [Fact]
    public void An_ipv6_range_covering_the_mapped_space_matches_ipv4_addresses()
    {
        Assert.True(CidrRange.Parse("::/0").Contains(IPAddress.Parse("8.8.8.8")));
        Assert.True(CidrRange.Parse("::/64").Contains(IPAddress.Parse("192.0.2.1")));
        Assert.False(CidrRange.Parse("2001:db8::/32").Contains(IPAddress.Parse("192.0.2.1")));
        Assert.False(CidrRange.Parse("0.0.0.0/0").Contains(IPAddress.IPv6Loopback));
    }

    [Fact]
    public void A_mapped_block_stored_by_an_older_version_matches_and_can_be_lifted()
    {
        using var t = new TestDatabase();
        // What the old code wrote for "block addr ::ffff:127.0.0.5": a 16-byte network with a /128 prefix.
        var mapped = IPAddress.Parse("::ffff:127.0.0.5").GetAddressBytes();
        using (var raw = t.Raw())
        using (var command = raw.CreateCommand())
        {
            command.CommandText = "INSERT INTO blocked_addresses (cidr, network, prefix_len, reason, created) VALUES ('::ffff:127.0.0.5/128', $net, 128, NULL, 0)";
            command.Parameters.AddWithValue("$net", mapped);
            command.ExecuteNonQuery();
        }
        t.Reopen();
        Assert.True(t.Trust.IsAddressBlocked(IPAddress.Parse("127.0.0.5")));
        Assert.Equal("127.0.0.5/32", Assert.Single(t.Trust.ListBlocklist().Addresses).Cidr);
        Assert.Equal(Core.SecureMeshErrorKind.Conflict, Assert.Throws<Core.SecureMeshException>(() => t.Trust.BlockAddress("127.0.0.5")).Kind);
        t.Trust.UnblockAddress("127.0.0.5");
        Assert.Empty(t.Trust.ListBlocklist().Addresses);
    }
}
