using System.Text;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// The upgrade's multistream-select lines travel with the Noise messages: the dialer proposes <c>/noise</c> lazily
/// (header, proposal and message 1 in one write) and a listener answers such a dialer together with message 2. Both
/// still work with a strict peer that negotiates first and handshakes after.
/// </summary>
public sealed class LazyNegotiationTests : IDisposable
{
    private readonly NodeIdentity _dialer = NodeIdentity.Generate();
    private readonly NodeIdentity _listener = NodeIdentity.Generate();

    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    /// <summary>The multistream header and the <c>/noise</c> proposal, each a varint length and a line.</summary>
    private static byte[] Proposal => [19, .. Encoding.ASCII.GetBytes("/multistream/1.0.0\n"), 7, .. Encoding.ASCII.GetBytes("/noise\n")];

    public void Dispose()
    {
        _dialer.Dispose();
        _listener.Dispose();
    }

    [Fact]
    public async Task The_dialer_sends_its_first_noise_message_with_the_proposal_before_any_answer()
    {
        await using var pair = await StreamPair.OpenAsync();
        var counted = new CountingStream(pair.A);
        var dial = new Upgrader(_dialer).UpgradeOutboundAsync(counted, _listener.PeerId, Patience);

        // Nothing is answered, yet the proposal and message 1 (a 32-byte ephemeral key) arrive, in one write.
        var sent = await Bytes.ReadExactlyAsync(pair.B, Proposal.Length + 2 + 32, Patience);
        Assert.Equal(Proposal, sent[..Proposal.Length]);
        Assert.Equal(new byte[] { 0, 32 }, sent[Proposal.Length..(Proposal.Length + 2)]);
        Assert.Equal(1, counted.Writes);

        await pair.B.DisposeAsync();
        await Assert.ThrowsAsync<SecureMeshException>(() => dial);
    }

    [Fact]
    public async Task A_strict_listener_that_negotiates_first_completes_the_upgrade_with_a_lazy_dialer()
    {
        await using var pair = await StreamPair.OpenAsync();
        var counted = new CountingStream(pair.A);
        var dial = new Upgrader(_dialer).UpgradeOutboundAsync(counted, _listener.PeerId, Patience);

        // The listener by hand: multistream-select reading exact lengths, then the handshake on the same stream.
        Assert.Equal(Upgrader.NoiseProtocolId, await MultistreamSelect.NegotiateAsync(pair.B, [Upgrader.NoiseProtocolId], Patience));
        var local = LocalStaticKey.For(_listener);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var handshake = await NoiseHandshake.RunHandshakeAsync(pair.B, false, local, local.PayloadWith([Upgrader.YamuxProtocolId]), null, null,
            null, new LogThrottle(), deadline, Patience);
        await using var accepted = new NoiseStream(pair.B, handshake);
        await using var outbound = await dial;

        Assert.Equal(_listener.PeerId, outbound.RemotePeerId);
        Assert.Equal(_dialer.PeerId, accepted.RemotePeerId);
        Assert.Equal(outbound.HandshakeHash, accepted.HandshakeHash);
        // Proposal with message 1, then message 3: two writes (three when the dialer waited for the answer).
        Assert.Equal(2, counted.Writes);
        await outbound.Stream.WriteAsync("after the upgrade"u8.ToArray(), Patience);
        Assert.Equal("after the upgrade"u8.ToArray(), await Bytes.ReadExactlyAsync(accepted, 17, Patience));
        // Nothing of the negotiation is counted as received by the secured stream.
        Assert.Equal(outbound.Stream.BytesSent, accepted.BytesReceived);
    }

    [Fact]
    public async Task A_listener_that_refuses_noise_fails_the_lazy_dialer_as_not_found()
    {
        await using var pair = await StreamPair.OpenAsync();
        var dial = new Upgrader(_dialer).UpgradeOutboundAsync(pair.A, _listener.PeerId, Patience);

        // A listener that speaks only TLS answers "na"; what the dialer sent after its proposal is not multistream.
        var refusing = MultistreamSelect.NegotiateAsync(pair.B, ["/tls/1.0.0"], Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => dial);
        Assert.Equal(SecureMeshErrorKind.NotFound, e.Kind);
        Assert.Contains("security negotiation failed", e.Message, StringComparison.Ordinal);
        Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => refusing)).Kind);
    }

    [Fact]
    public async Task A_listener_answers_a_lazy_dialer_together_with_message_2()
    {
        await using var pair = await StreamPair.OpenAsync();
        var counted = new CountingStream(pair.B);
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(counted, Patience);

        // A lazy dialer by hand: the proposal and message 1 in one write.
        using var staticKey = X25519KeyPair.Generate();
        using var handshake = new HandshakeState(initiator: true, staticKey);
        var message1 = new byte[2 + 32];
        message1[1] = (byte)handshake.WriteMessage([], message1.AsSpan(2));
        await pair.A.WriteAsync((byte[])[.. Proposal, .. message1], Patience);

        // The answer (header and echo) and message 2 come in the listener's one write.
        var answer = await Bytes.ReadExactlyAsync(pair.A, Proposal.Length + 2, Patience);
        Assert.Equal(Proposal, answer[..Proposal.Length]);
        var length = (answer[^2] << 8) | answer[^1];
        var message2 = await Bytes.ReadExactlyAsync(pair.A, length, Patience);
        Assert.True(handshake.TryReadMessage(message2, new byte[length], out _));
        Assert.Equal(1, counted.Writes);

        // Message 3 with a payload that is not signed for this static key: the listener refuses it.
        var message3 = new byte[2 + 512];
        var payload = new NoiseHandshakePayload { IdentityKey = _dialer.PeerId.ProtobufPublicKey(), IdentitySignature = new byte[64] }.Encode();
        var n = handshake.WriteMessage(payload, message3.AsSpan(2));
        message3[0] = (byte)(n >> 8);
        message3[1] = (byte)n;
        await pair.A.WriteAsync(message3.AsMemory(0, 2 + n), Patience);
        Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => inbound)).Kind);
    }

    [Fact]
    public async Task A_dialer_that_waits_for_the_answer_gets_it_at_once_and_the_upgrade_completes()
    {
        await using var pair = await StreamPair.OpenAsync();
        var inbound = new Upgrader(_listener).UpgradeInboundAsync(pair.B, Patience);

        // A strict dialer by hand (as go-libp2p's upgrader): the answer first, then the handshake.
        Assert.Equal(Upgrader.NoiseProtocolId, await MultistreamSelect.SelectAsync(pair.A, [Upgrader.NoiseProtocolId], Patience));
        var local = LocalStaticKey.For(_dialer);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var handshake = await NoiseHandshake.RunHandshakeAsync(pair.A, true, local, local.PayloadWith([Upgrader.YamuxProtocolId]), _listener.PeerId, null,
            null, new LogThrottle(), deadline, Patience);
        await using var dialled = new NoiseStream(pair.A, handshake);
        await using var accepted = await inbound;
        Assert.Equal(_dialer.PeerId, accepted.RemotePeerId);
        Assert.True(accepted.MuxerNegotiatedEarly);
        Assert.Equal(dialled.BytesSent, accepted.Stream.BytesReceived);
    }

    /// <summary>A stream that counts the writes made to it (each one a send on the socket below).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public int Writes { get; private set; }

        public override bool CanRead => true;

        public override bool CanWrite => true;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes++;
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            Writes++;
            inner.Write(buffer, offset, count);
        }

        public override void Flush() => inner.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
