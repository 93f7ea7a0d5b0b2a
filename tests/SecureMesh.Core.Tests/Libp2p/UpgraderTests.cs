using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;

namespace SecureMesh.Core.Tests.Libp2p;

public sealed class UpgraderTests : IDisposable
{
    private readonly NodeIdentity _dialer = NodeIdentity.Generate();
    private readonly NodeIdentity _listener = NodeIdentity.Generate();

    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    public void Dispose()
    {
        _dialer.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task Both_sides_agree_on_yamux_in_the_handshake_and_carry_bytes_both_ways()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        await using var outbound = await new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, _listener.PeerId, Patience);
        await using var accepted = await inbound;

        Assert.Equal(_listener.PeerId, outbound.RemotePeerId);
        Assert.Equal(_dialer.PeerId, accepted.RemotePeerId);
        Assert.Equal(Upgrader.YamuxProtocolId, outbound.Muxer);
        Assert.Equal(Upgrader.YamuxProtocolId, accepted.Muxer);
        Assert.True(outbound.MuxerNegotiatedEarly);
        Assert.True(accepted.MuxerNegotiatedEarly);
        Assert.True(outbound.IsInitiator);
        Assert.False(accepted.IsInitiator);
        Assert.Equal(outbound.HandshakeHash, accepted.HandshakeHash);
        Assert.Equal([Upgrader.YamuxProtocolId], outbound.Stream.RemoteStreamMuxers);

        // More than one Noise frame each way, written and read concurrently.
        var big = new byte[300_000];
        Random.Shared.NextBytes(big);
        var send = outbound.Stream.WriteAsync(big, Patience).AsTask();
        var echo = Task.Run(async () =>
        {
            var got = await Bytes.ReadExactlyAsync(accepted.Stream, big.Length, Patience);
            await accepted.Stream.WriteAsync(got, Patience);
        });
        var back = await Bytes.ReadExactlyAsync(outbound.Stream, big.Length, Patience);
        await send;
        await echo;
        Assert.Equal(big, back);
    }

    [Fact]
    public async Task The_initiators_preference_decides_among_common_muxers()
    {
        Assert.Equal("/mplex/6.7.0", Upgrader.ChooseEarlyMuxer(["/mplex/6.7.0", "/yamux/1.0.0"], ["/yamux/1.0.0", "/mplex/6.7.0"]));
        Assert.Equal("/yamux/1.0.0", Upgrader.ChooseEarlyMuxer(["/yamux/1.0.0", "/mplex/6.7.0"], ["/mplex/6.7.0", "/yamux/1.0.0"]));
        Assert.Null(Upgrader.ChooseEarlyMuxer(["/yamux/1.0.0"], []));
        Assert.Null(Upgrader.ChooseEarlyMuxer([], ["/yamux/1.0.0"]));
        Assert.Equal(SecureMeshErrorKind.Protocol, Assert.Throws<SecureMeshException>(() => Upgrader.ChooseEarlyMuxer(["/mplex/6.7.0"], ["/yamux/1.0.0"])).Kind);

        // The same through real handshakes: the listener prefers another muxer, the dialer's first choice wins.
        await using var pair = await StreamPair.OpenAsync();
        var listener = new Upgrader(_listener, new UpgraderOptions { StreamMuxers = ["/other/1", Upgrader.YamuxProtocolId] });
        var dialer = new Upgrader(_dialer, new UpgraderOptions { StreamMuxers = [Upgrader.YamuxProtocolId, "/other/1"] });
        var inbound = listener.UpgradeInboundAsync(pair.B, Patience);
        await using var outbound = await dialer.UpgradeOutboundAsync(pair.A, null, Patience);
        await using var accepted = await inbound;
        Assert.Equal(Upgrader.YamuxProtocolId, outbound.Muxer);
        Assert.Equal(Upgrader.YamuxProtocolId, accepted.Muxer);
    }

    [Fact]
    public async Task No_common_muxer_in_the_handshake_fails_both_sides()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listener = new Upgrader(_listener, new UpgraderOptions { StreamMuxers = ["/mplex/6.7.0"] });
        var inbound = listener.UpgradeInboundAsync(pair.B, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, null, Patience));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("no stream muxer", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<SecureMeshException>(() => inbound);
    }

    [Fact]
    public async Task A_peer_that_lists_no_muxer_in_the_handshake_gets_yamux_through_multistream_select()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);

        // An older libp2p dialer: /noise by multistream, a payload without extensions, then /yamux/1.0.0 by multistream.
        Assert.Equal("/noise", await MultistreamSelect.SelectAsync(pair.A, ["/noise"], Patience));
        var local = LocalStaticKey.For(_dialer);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var handshake = await NoiseHandshake.RunHandshakeAsync(pair.A, true, local, local.PayloadWith([]), _listener.PeerId, null,
            null, new LogThrottle(), deadline, Patience);
        await using var secured = new NoiseStream(pair.A, handshake);
        Assert.Equal([Upgrader.YamuxProtocolId], secured.RemoteStreamMuxers);
        Assert.Equal(Upgrader.YamuxProtocolId, await MultistreamSelect.SelectAsync(secured, ["/mplex/6.7.0", Upgrader.YamuxProtocolId], Patience));

        await using var accepted = await inbound;
        Assert.False(accepted.MuxerNegotiatedEarly);
        Assert.Equal(Upgrader.YamuxProtocolId, accepted.Muxer);
        Assert.Equal(_dialer.PeerId, accepted.RemotePeerId);
        await secured.WriteAsync("yamux bytes"u8.ToArray(), Patience);
        Assert.Equal("yamux bytes"u8.ToArray(), await Bytes.ReadExactlyAsync(accepted.Stream, 11, Patience));
    }

    [Fact]
    public async Task Dialling_the_wrong_peer_is_refused_as_unauthorized()
    {
        using var someoneElse = NodeIdentity.Generate();
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, someoneElse.PeerId, Patience));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, e.Kind);
        // The dialer never sent its identity: the listener's handshake fails, it learns nothing.
        await Assert.ThrowsAsync<SecureMeshException>(() => inbound);
    }

    [Fact]
    public async Task Garbage_instead_of_multistream_closes_the_connection_with_a_protocol_error()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        // 'G' reads as a 71-byte message, and its 71st byte is not a newline.
        await pair.A.WriteAsync(System.Text.Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n" + new string('A', 100)), Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => inbound);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.True(await StreamPair.EndsWithinAsync(pair.A, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Proposing_anything_but_noise_gets_na_and_never_a_handshake()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => MultistreamSelect.SelectAsync(pair.A, ["/plaintext/2.0.0", "/tls/1.0.0"], Patience));
        Assert.Equal(SecureMeshErrorKind.NotFound, e.Kind);
        await pair.A.DisposeAsync();
        await Assert.ThrowsAsync<SecureMeshException>(() => inbound);
    }

    [Fact]
    public async Task A_peer_that_stalls_after_choosing_noise_is_cut_off_at_the_deadline()
    {
        var time = new FakeTimeProvider();
        await using var pair = await StreamPair.OpenAsync();
        var upgrader = new Upgrader(_listener, new UpgraderOptions { HandshakeTimeout = TimeSpan.FromSeconds(10), TimeProvider = time });
        var inbound = upgrader.UpgradeInboundAsync(pair.B, Patience);
        Assert.Equal("/noise", await MultistreamSelect.SelectAsync(pair.A, ["/noise"], Patience));
        await Task.Delay(50);
        Assert.False(inbound.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(11));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => inbound.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        Assert.Contains("timed out", e.Message, StringComparison.Ordinal);
        Assert.True(await StreamPair.EndsWithinAsync(pair.A, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_tampered_frame_after_the_upgrade_ends_the_secured_stream_for_good()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        await using var outbound = await new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, _listener.PeerId, Patience);
        await using var accepted = await inbound;

        await outbound.Stream.WriteAsync("first"u8.ToArray(), Patience);
        Assert.Equal("first"u8.ToArray(), await Bytes.ReadExactlyAsync(accepted.Stream, 5, Patience));
        // A frame of the right shape that was never sealed with the session key.
        byte[] forged = [0x00, 0x20, .. new byte[32]];
        await outbound.Stream.SendRawForTestAsync(forged, seal: false, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await ReadSomeAsync(accepted.Stream));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("decryption", e.Message, StringComparison.Ordinal);
        Assert.NotNull(accepted.Stream.ClosedReason);
        await Assert.ThrowsAsync<SecureMeshException>(async () => await ReadSomeAsync(accepted.Stream));
        await Assert.ThrowsAsync<SecureMeshException>(async () => await accepted.Stream.WriteAsync(new byte[1], Patience));
    }

    [Fact]
    public async Task A_frame_cut_short_by_the_peer_is_a_protocol_error_and_a_clean_close_is_the_end_of_the_stream()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        var outbound = await new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, _listener.PeerId, Patience);
        await using var accepted = await inbound;
        await outbound.Stream.SendRawForTestAsync(new byte[] { 0x01, 0x00, 1, 2, 3 }, seal: false, Patience);
        pair.SocketA.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await ReadSomeAsync(accepted.Stream));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        await outbound.DisposeAsync();

        await using var pair2 = await StreamPair.OpenAsync();
        var inbound2 = new Upgrader(_listener).UpgradeInboundAsync(pair2.B, Patience);
        await using (var outbound2 = await new Upgrader(_dialer).UpgradeOutboundAsync(pair2.A, _listener.PeerId, Patience))
        {
            await outbound2.Stream.WriteAsync("bye"u8.ToArray(), Patience);
        }
        await using var accepted2 = await inbound2;
        Assert.Equal("bye"u8.ToArray(), await Bytes.ReadExactlyAsync(accepted2.Stream, 3, Patience));
        Assert.Equal(0, await ReadSomeAsync(accepted2.Stream));
    }

    private static async Task<int> ReadSomeAsync(Stream stream) => await stream.ReadAtLeastAsync(new byte[64], 1, throwOnEndOfStream: false, Patience);

    [Fact]
    public async Task The_handshake_payload_announces_the_stream_muxers_and_nothing_of_the_old_channel()
    {
        // The pre-libp2p channel announced /securemesh/1 in the payload's stream_muxers; only real muxers go there now,
        // each list with the same signature (it covers only the static key).
        var plain = Core.Noise.NoiseHandshakePayload.Decode(LocalStaticKey.For(_dialer).PayloadWith([]));
        var upgraded = Core.Noise.NoiseHandshakePayload.Decode(LocalStaticKey.For(_dialer).PayloadWith([Upgrader.YamuxProtocolId]));
        Assert.Empty(plain.StreamMuxers);
        Assert.Equal([Upgrader.YamuxProtocolId], upgraded.StreamMuxers);
        Assert.Equal(plain.IdentitySignature, upgraded.IdentitySignature);

        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);
        await using var outbound = await new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, _listener.PeerId, Patience);
        await using var accepted = await inbound;
        Assert.Equal([Upgrader.YamuxProtocolId], accepted.Stream.RemoteStreamMuxers);
        Assert.Equal([Upgrader.YamuxProtocolId], outbound.Stream.RemoteStreamMuxers);
        Assert.DoesNotContain("/securemesh/1", accepted.Stream.RemoteStreamMuxers);
    }
}
