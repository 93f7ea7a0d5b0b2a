using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Channel;

/// <summary>
/// The libp2p Noise handshake (<c>Noise_XX_25519_ChaChaPoly_SHA256</c>, 2-byte big-endian framing,
/// <c>NoiseHandshakePayload</c> signed by the Ed25519 identity), as the <see cref="Libp2p.Upgrader"/> runs it after
/// multistream-select has chosen <c>/noise</c>; <see cref="NoiseStream"/> carries the connection from then on.
/// </summary>
internal static class NoiseHandshake
{
    /// <summary>What a finished handshake hands over: the frame reader (it may hold bytes already read), the keys and the peer.</summary>
    internal readonly record struct HandshakeOutcome(FrameReader Reader, TransportState Transport, PeerId RemotePeer, IReadOnlyList<string> RemoteProtocols, long BytesWritten);

    /// <summary>
    /// The handshake proper, sending <paramref name="localPayload"/> (an encoded <c>NoiseHandshakePayload</c> signed for
    /// <paramref name="local"/>'s static key). Any failure disposes the stream and throws <see cref="SecureMeshException"/>
    /// (or OperationCanceledException for the caller's own token).
    /// </summary>
    internal static Task<HandshakeOutcome> RunHandshakeAsync(
        Stream stream, bool initiator, LocalStaticKey local, ReadOnlyMemory<byte> localPayload, PeerId? expected, string? remoteText,
        ILogger? logger, LogThrottle failureLog, CancellationTokenSource deadline, CancellationToken cancellationToken) =>
        RunHandshakeAsync(stream, new FrameReader(stream), initiator, local, localPayload, expected, remoteText, logger, failureLog, null, deadline, cancellationToken);

    /// <summary>
    /// The handshake on a connection whose <paramref name="reader"/> already exists (it may hold the peer's first bytes);
    /// messages are written to <paramref name="stream"/>. <paramref name="afterFirstWrite"/>, for the initiator, runs
    /// after message 1 is sent and before message 2 is read: the check of a lazy multistream-select answer that arrives
    /// ahead of message 2. Failures as above; the reader is disposed with the stream.
    /// </summary>
    internal static async Task<HandshakeOutcome> RunHandshakeAsync(
        Stream stream, FrameReader reader, bool initiator, LocalStaticKey local, ReadOnlyMemory<byte> localPayload, PeerId? expected, string? remoteText,
        ILogger? logger, LogThrottle failureLog, Func<CancellationToken, Task>? afterFirstWrite, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var ct = linked.Token;
        var handshake = new HandshakeState(initiator, local.Key);
        var message = ArrayPool<byte>.Shared.Rent(2 + HandshakeState.MaxMessageLength);
        var payload = ArrayPool<byte>.Shared.Rent(HandshakeState.MaxMessageLength);
        TransportState? transport = null;
        var messageUsed = 0;
        var payloadUsed = 0;
        try
        {
            PeerId remotePeer;
            IReadOnlyList<string> remoteProtocols;
            long written = 0;
            if (initiator)
            {
                written += await WriteMessageAsync(stream, handshake, ReadOnlyMemory<byte>.Empty, message, ct);
                if (afterFirstWrite is not null)
                {
                    await afterFirstWrite(ct);
                }
                var frame = await ReadMessageAsync(reader, 2, ct);
                payloadUsed = frame.Length;
                var length = ReadOrThrow(handshake, frame.Span, payload, 2);
                (remotePeer, remoteProtocols) = VerifyPayload(payload.AsSpan(0, length), handshake.RemoteStaticPublicKey);
                if (expected is not null && remotePeer != expected)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"the peer is {remotePeer}, not the dialled {expected}");
                }
                written += await WriteMessageAsync(stream, handshake, localPayload, message, ct);
                messageUsed = (int)written;
            }
            else
            {
                var frame = await ReadMessageAsync(reader, 1, ct);
                payloadUsed = frame.Length;
                if (ReadOrThrow(handshake, frame.Span, payload, 1) != 0)
                {
                    // libp2p sends nothing in the first message; it is unauthenticated, so take nothing from it.
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, "handshake message 1 carries a payload");
                }
                written += await WriteMessageAsync(stream, handshake, localPayload, message, ct);
                messageUsed = (int)written;
                frame = await ReadMessageAsync(reader, 3, ct);
                payloadUsed = Math.Max(payloadUsed, frame.Length);
                var length = ReadOrThrow(handshake, frame.Span, payload, 3);
                (remotePeer, remoteProtocols) = VerifyPayload(payload.AsSpan(0, length), handshake.RemoteStaticPublicKey);
            }
            transport = handshake.Split();
            if (logger is not null)
            {
                ChannelLog.HandshakeSucceeded(logger, remotePeer.Text, remoteText, initiator ? "initiator" : "responder");
            }
            return new HandshakeOutcome(reader, transport, remotePeer, remoteProtocols, written);
        }
        catch (Exception e)
        {
            handshake.Dispose();
            transport?.Dispose();
            reader.Dispose();
            await stream.DisposeAsync();
            var error = Translate(e, deadline, cancellationToken);
            if (logger is not null)
            {
                ChannelLog.HandshakeFailed(logger, failureLog, remoteText, error?.Message ?? "cancelled");
            }
            if (error is null)
            {
                throw;
            }
            throw error;
        }
        finally
        {
            // Handshake messages are small: wipe just the part that was used, not the whole 64 KiB.
            // (On an early failure the counters may lag the buffers by one message: wipe generously then.)
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(message.AsSpan(0, messageUsed == 0 ? message.Length : Math.Min(message.Length, messageUsed + 2)));
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(payload.AsSpan(0, Math.Min(payload.Length, payloadUsed)));
            ArrayPool<byte>.Shared.Return(message);
            ArrayPool<byte>.Shared.Return(payload);
        }
    }

    /// <summary>Maps any failure to a <see cref="SecureMeshException"/>; null means "the caller cancelled", rethrown as is.</summary>
    private static SecureMeshException? Translate(Exception e, CancellationTokenSource deadline, CancellationToken cancellationToken) => e switch
    {
        SecureMeshException sme => sme,
        OperationCanceledException when cancellationToken.IsCancellationRequested => null,
        OperationCanceledException when deadline.IsCancellationRequested => new SecureMeshException(SecureMeshErrorKind.Network, "handshake timed out", e),
        IOException or SocketException or ObjectDisposedException => new SecureMeshException(SecureMeshErrorKind.Network, "connection lost during the handshake", e),
        _ => new SecureMeshException(SecureMeshErrorKind.Protocol, "handshake failed", e),
    };

    private static async ValueTask<int> WriteMessageAsync(Stream stream, HandshakeState handshake, ReadOnlyMemory<byte> payload, byte[] buffer, CancellationToken ct)
    {
        var length = handshake.WriteMessage(payload.Span, buffer.AsSpan(2));
        BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)length);
        await stream.WriteAsync(buffer.AsMemory(0, length + 2), ct);
        await stream.FlushAsync(ct);
        return length + 2;
    }

    private static async ValueTask<Memory<byte>> ReadMessageAsync(FrameReader reader, int number, CancellationToken ct) =>
        await reader.ReadFrameAsync(ct)
        ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"connection closed before handshake message {number}");

    private static int ReadOrThrow(HandshakeState handshake, ReadOnlySpan<byte> frame, byte[] payload, int number)
    {
        if (!handshake.TryReadMessage(frame, payload, out var length))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"handshake message {number} is malformed or fails authentication");
        }
        return length;
    }

    /// <summary>Checks the identity key and its signature over the remote static key; returns the authenticated Peer ID.</summary>
    internal static (PeerId Peer, IReadOnlyList<string> Protocols) VerifyPayload(ReadOnlySpan<byte> payloadBytes, ReadOnlySpan<byte> remoteStatic)
    {
        var payload = NoiseHandshakePayload.Decode(payloadBytes);
        if (!PeerId.TryDecodeProtobufPublicKey(payload.IdentityKey, out var identityKey))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer's identity key is not an Ed25519 libp2p key");
        }
        if (VerifiedStaticKeys.Find(remoteStatic, identityKey, payload.IdentitySignature) is { } known)
        {
            // Exactly these bytes verified before (a peer connecting again with its process's static key).
            return (known, payload.StreamMuxers);
        }
        if (!NodeIdentity.Verify(identityKey, NoiseHandshakePayload.SignedData(remoteStatic), payload.IdentitySignature))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer's identity signature over its Noise key does not verify");
        }
        var peer = PeerId.FromPublicKey(identityKey);
        VerifiedStaticKeys.Remember(remoteStatic, identityKey, payload.IdentitySignature, peer);
        return (peer, payload.StreamMuxers);
    }
}
