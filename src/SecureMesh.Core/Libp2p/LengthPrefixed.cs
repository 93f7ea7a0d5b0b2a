using System.Buffers;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// Messages prefixed by their length as an unsigned varint, the framing of multistream-select and of libp2p's small
/// protocols (identify). A reader never reads past the message it was asked for, so what follows on the stream (a Noise
/// handshake, a protocol's own bytes) stays there for the next owner.
/// </summary>
internal static class LengthPrefixed
{
    /// <summary>
    /// Reads one message of at most <paramref name="maxLength"/> bytes; null when the stream ended cleanly before it began.
    /// A longer length is refused before anything is allocated. Throws <see cref="SecureMeshException"/> (Protocol) on a
    /// malformed or oversized prefix or a message cut short.
    /// </summary>
    public static async ValueTask<byte[]?> ReadAsync(Stream stream, int maxLength, string what, CancellationToken cancellationToken)
    {
        var prefix = new byte[Varint.MaxLength];
        var maxPrefix = Varint.Size((ulong)maxLength);
        var used = 0;
        ulong length;
        while (true)
        {
            var read = await stream.ReadAsync(prefix.AsMemory(used, 1), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                if (used == 0)
                {
                    return null;
                }
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the stream ended inside the length of a {what}");
            }
            used++;
            if (Varint.TryRead(prefix.AsSpan(0, used), out length, out _))
            {
                break;
            }
            if (used >= maxPrefix)
            {
                throw TooLong(what, maxLength);
            }
        }
        if (length > (ulong)maxLength)
        {
            throw TooLong(what, maxLength);
        }
        var message = new byte[(int)length];
        var filled = 0;
        while (filled < message.Length)
        {
            var read = await stream.ReadAsync(message.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the stream ended inside a {what} ({filled} of {length} bytes)");
            }
            filled += read;
        }
        return message;
    }

    /// <summary>Writes the messages, each with its varint length, in one write, and flushes.</summary>
    public static async ValueTask WriteAsync(Stream stream, IReadOnlyList<ReadOnlyMemory<byte>> messages, CancellationToken cancellationToken)
    {
        var total = 0;
        foreach (var message in messages)
        {
            total += Varint.Size((ulong)message.Length) + message.Length;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var at = 0;
            foreach (var message in messages)
            {
                at += Varint.Write(buffer.AsSpan(at), (ulong)message.Length);
                message.Span.CopyTo(buffer.AsSpan(at));
                at += message.Length;
            }
            await stream.WriteAsync(buffer.AsMemory(0, total), cancellationToken).ConfigureAwait(false);
            await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes one message with its varint length and flushes.</summary>
    public static ValueTask WriteAsync(Stream stream, ReadOnlyMemory<byte> message, CancellationToken cancellationToken) =>
        WriteAsync(stream, [message], cancellationToken);

    private static SecureMeshException TooLong(string what, int maxLength) =>
        new(SecureMeshErrorKind.Protocol, $"a {what} is longer than {maxLength} bytes");
}
