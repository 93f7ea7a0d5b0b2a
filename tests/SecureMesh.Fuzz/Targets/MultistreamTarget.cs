using System.Text;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Libp2p.Multistream;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// multistream-select on a byte stream, as listener or dialer. Byte 0 picks the role (even: our listener reads a dialer's
/// bytes; odd: our dialer reads a listener's answers), byte 1 how many bytes the stream hands out per read (0: all asked),
/// the rest is what the peer sends. The negotiation may only succeed with a protocol it offered or supports, or refuse
/// with its own error (Protocol; Network for the end of the input; NotFound when no proposal is taken); a listener that
/// succeeds must have answered with the header first and the chosen protocol last.
/// </summary>
internal static class MultistreamTarget
{
    public static FuzzTarget Target { get; } = new("multistream", "multistream-select 1.0 listener and dialer on a stream", Run, Seeds);

    private static readonly string[] Supported = ["/noise", "/yamux/1.0.0", "/ipfs/ping/1.0.0"];
    private static readonly string[] Proposals = ["/tls/1.0.0", "/noise"];

    public static bool Run(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2)
        {
            return false;
        }
        var listener = data[0] % 2 == 0;
        var stream = new ScriptedStream(data[2..].ToArray(), data[1] == 0 ? int.MaxValue : data[1]);
        string chosen;
        try
        {
            chosen = listener
                ? MultistreamSelect.NegotiateAsync(stream, p => Supported.Contains(p), Supported, null, CancellationToken.None).GetAwaiter().GetResult()
                : MultistreamSelect.SelectAsync(stream, Proposals, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (SecureMeshException e) when (e.InnerException is null
            && (e.Kind == SecureMeshErrorKind.Protocol || e.Kind == SecureMeshErrorKind.Network || (!listener && e.Kind == SecureMeshErrorKind.NotFound)))
        {
            return false;
        }
        if (!(listener ? Supported : Proposals).Contains(chosen))
        {
            throw Expected.Finding($"negotiated '{chosen}', which was never on offer");
        }
        if (listener)
        {
            var written = stream.Written;
            var header = Line(MultistreamSelect.ProtocolId);
            var echo = Line(chosen);
            if (!written.AsSpan().StartsWith(header) || !written.AsSpan().EndsWith(echo))
            {
                throw Expected.Finding("the listener's answers do not start with the header and end with the chosen protocol");
            }
        }
        return true;
    }

    private static byte[] Line(string text)
    {
        var body = Encoding.UTF8.GetBytes(text + "\n");
        return [(byte)body.Length, .. body];
    }

    private static IReadOnlyList<byte[]> Seeds() =>
    [
        [0, 0, .. Line(MultistreamSelect.ProtocolId), .. Line("/tls/1.0.0"), .. Line("ls"), .. Line("/noise")],
        [2, 1, .. Line(MultistreamSelect.ProtocolId), .. Line("/ipfs/ping/1.0.0"), 1, 2, 3],
        [1, 0, .. Line(MultistreamSelect.ProtocolId), .. Line("na"), .. Line("/noise")],
        [3, 3, .. Line(MultistreamSelect.ProtocolId), .. Line("/tls/1.0.0")],
    ];

    /// <summary>Reads hand out the script a few bytes at a time; writes are kept.</summary>
    private sealed class ScriptedStream(byte[] script, int perRead) : DuplexStream
    {
        private readonly MemoryStream _written = new();
        private int _position;

        public byte[] Written => _written.ToArray();

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var count = Math.Min(Math.Min(buffer.Length, perRead), script.Length - _position);
            script.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Write(byte[] buffer, int offset, int count) => _written.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _written.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override void Flush()
        {
        }

    }
}
