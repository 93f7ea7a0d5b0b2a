using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Addressing;

public class DialAddressTests
{
    private const string Peer = "12D3KooWAwuGjgULaLPKfdD4dGfUQmFbdcmgaXcpSEcGutEyPYuh";

    [Theory]
    [InlineData("192.0.2.7:4747", "192.0.2.7:4747", "192.0.2.7")]
    [InlineData(" [2001:db8::7]:4747 ", "[2001:db8::7]:4747", "2001:db8::7")]
    [InlineData("[::ffff:192.0.2.1]:80", "192.0.2.1:80", "192.0.2.1")]
    [InlineData("NAS.Local:4747", "nas.local:4747", null)]
    [InlineData("localhost:1", "localhost:1", null)]
    [InlineData("/ip4/192.0.2.7/tcp/4747", "/ip4/192.0.2.7/tcp/4747", "192.0.2.7")]
    [InlineData("/ip6/::1/tcp/4747", "/ip6/::1/tcp/4747", "::1")]
    [InlineData("/dns/nas.local/tcp/4747", "/dns/nas.local/tcp/4747", null)]
    public void Accepted_forms_keep_a_canonical_text(string text, string canonical, string? ip)
    {
        var a = DialAddress.Parse(text);
        Assert.Equal(canonical, a.Text);
        Assert.Equal(ip, a.Ip?.ToString());
        Assert.Null(a.PeerId);
    }

    [Fact]
    public void A_trailing_p2p_names_the_peer_and_dns4_dns6_restrict_the_family()
    {
        var a = DialAddress.Parse($"/dns4/nas.local/tcp/4747/p2p/{Peer}");
        Assert.Equal(PeerId.Parse(Peer), a.PeerId);
        Assert.Equal(AddressFamily.InterNetwork, a.Family);
        Assert.Equal("nas.local", a.Host);
        Assert.Equal(4747, a.Port);
        Assert.Equal(AddressFamily.InterNetworkV6, DialAddress.Parse("/dns6/nas.local/tcp/1").Family);
    }

    [Theory]
    [InlineData("4747", "expected HOST:PORT")]
    [InlineData("nas.local", "expected HOST:PORT")]
    [InlineData("nas.local:", "expected HOST:PORT")]
    [InlineData("nas.local:0", "from 1 to 65535")]
    [InlineData("nas.local:65536", "from 1 to 65535")]
    [InlineData("2001:db8::7:4747", "in brackets")]
    [InlineData("[fe80::1%eth0]:1", "must be an IPv6 address")]
    [InlineData("1.2.3:4", "not a valid IPv4")]
    [InlineData("nas_local!:1", "not a DNS name")]
    [InlineData("/ip4/192.0.2.7", "expected /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT")]
    [InlineData("/tcp/1/ip4/192.0.2.7", "expected /ip4")]
    [InlineData("/ip4/192.0.2.7/tcp/0", "must not be 0")]
    [InlineData("/ip4/192.0.2.7/tcp/1/tcp/2", "expected /ip4")]
    [InlineData("/ip4/192.0.2.7/tcp/1/p2p/" + Peer + "/p2p-circuit", "not supported yet")]
    [InlineData("/ip4/192.0.2.7/tcp/99999", "not a port")]
    public void Malformed_addresses_are_refused_with_the_reason(string text, string reason)
    {
        var e = Assert.Throws<SecureMeshException>(() => DialAddress.Parse(text));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Port_zero_is_allowed_only_for_listening()
    {
        Assert.Equal(0, DialAddress.Parse("0.0.0.0:0", allowPortZero: true).Port);
        Assert.Equal(0, DialAddress.Parse("/ip4/0.0.0.0/tcp/0", allowPortZero: true).Port);
        Assert.False(DialAddress.TryParse("0.0.0.0:0", out _, out _));
    }

    [Fact]
    public async Task A_name_is_resolved_when_dialled_and_an_address_is_used_as_it_is()
    {
        var literal = await DialAddress.Parse("/ip4/127.0.0.1/tcp/5").ResolveAsync(CancellationToken.None);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 5)], literal);
        var named = await DialAddress.Parse("localhost:6").ResolveAsync(CancellationToken.None);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6), named[0]);
        Assert.All(named, e => Assert.True(IPAddress.IsLoopback(e.Address)));
        var v4 = await DialAddress.Parse("/dns4/localhost/tcp/7").ResolveAsync(CancellationToken.None);
        Assert.All(v4, e => Assert.Equal(AddressFamily.InterNetwork, e.AddressFamily));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => DialAddress.Parse("no-such-host.invalid:1").ResolveAsync(CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
    }
}
