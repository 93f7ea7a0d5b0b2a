using System.Buffers.Binary;
using SecureMesh.Core;
using SecureMesh.Core.Channel;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The Noise frame reader (u16 big-endian length, then the body) on a byte stream. The first input byte says how many
/// bytes the stream hands out per read (0: as many as asked), so short reads, frames split across reads and the
/// buffer compaction are reached too. Every frame returned is checked against an independent reading of the bytes.
/// </summary>
internal static class FrameTarget
{
    public static FuzzTarget Target { get; } = new("frame", "FrameReader: u16 length-prefixed Noise frames read from a stream", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return false;
        }
        var perRead = data[0] == 0 ? int.MaxValue : data[0];
        var wire = data[1..].ToArray();
        using var stream = new TrickleStream(wire, perRead);
        using var reader = new FrameReader(stream);
        var position = 0;
        while (true)
        {
            Memory<byte>? frame;
            try
            {
                frame = reader.ReadFrameAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            catch (SecureMeshException e) when (Expected.IsProtocolError(e))
            {
                // Legitimate only when what is left really is an incomplete frame.
                if (HoldsWholeFrame(wire, position) || position == wire.Length)
                {
                    throw Expected.Finding($"'{e.Message}' at offset {position} of {wire.Length}, but what is left is not a truncated frame");
                }
                return false;
            }
            if (frame is null)
            {
                if (position != wire.Length)
                {
                    throw Expected.Finding($"clean end of stream reported at offset {position} of {wire.Length}");
                }
                if (reader.BytesRead != wire.Length)
                {
                    throw Expected.Finding($"BytesRead is {reader.BytesRead}, the stream held {wire.Length}");
                }
                return true;
            }
            if (!HoldsWholeFrame(wire, position))
            {
                throw Expected.Finding($"a frame returned at offset {position} of {wire.Length}, where no whole frame is");
            }
            var length = BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(position));
            var body = frame.Value.Span;
            if (body.Length != length || !body.SequenceEqual(wire.AsSpan(position + 2, length)))
            {
                throw Expected.Finding($"the frame at offset {position} is {body.Length} bytes that differ from the {length} bytes sent");
            }
            position += 2 + length;
        }
    }

    private static bool HoldsWholeFrame(byte[] wire, int position) =>
        wire.Length - position >= 2 && wire.Length - position >= 2 + BinaryPrimitives.ReadUInt16BigEndian(wire.AsSpan(position));

    private static IReadOnlyList<byte[]> Seeds()
    {
        static byte[] Frame(int length, byte fill)
        {
            var frame = new byte[2 + length];
            BinaryPrimitives.WriteUInt16BigEndian(frame, (ushort)length);
            frame.AsSpan(2).Fill(fill);
            return frame;
        }
        return
        [
            [0, .. Frame(0, 0), .. Frame(5, 0xA5)],
            [1, .. Frame(3, 1), .. Frame(1, 2), .. Frame(4, 3), .. Frame(2, 4)],
            [3, .. Frame(32, 0x32), .. Frame(48, 0x48)],
            [200, .. Frame(1000, 0x10), .. Frame(255, 0xFF)],
            [0, .. Frame(FrameReader.MaxFrameLength, 0x7E), .. Frame(1, 1)],
            // Four largest frames: more than the reader's 256 KiB buffer, so the last one is moved to the front.
            [0, .. Frame(FrameReader.MaxFrameLength, 1), .. Frame(FrameReader.MaxFrameLength, 2),
                .. Frame(FrameReader.MaxFrameLength, 3), .. Frame(FrameReader.MaxFrameLength, 4)],
        ];
    }

    /// <summary>A read-only stream over a byte array that hands out at most a fixed number of bytes per read.</summary>
    internal sealed class TrickleStream(byte[] data, int perRead) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var count = Math.Min(Math.Min(buffer.Length, perRead), data.Length - _position);
            data.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
