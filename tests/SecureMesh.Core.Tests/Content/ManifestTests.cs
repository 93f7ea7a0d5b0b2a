using System.Buffers.Binary;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Content;

public sealed class ManifestTests : IDisposable
{
    private static readonly DateTimeOffset Created = new(2026, 11, 25, 12, 0, 0, 123, TimeSpan.Zero);
    private readonly NodeIdentity _publisher = NodeIdentity.FromSeed(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
    private readonly NodeIdentity _other = NodeIdentity.Generate();

    public void Dispose()
    {
        _publisher.Dispose();
        _other.Dispose();
    }

    private static ContentId SomeId() => MerkleTestData.ReferenceId([1, 2, 3], ChunkLayout.DefaultChunkSize);

    private Manifest Sample(string name = "holiday photos.tar") =>
        Manifest.Create(_publisher, name, 107_374_182_400, ChunkLayout.DefaultChunkSize, SomeId(), Created);

    [Fact]
    public void Create_verify_and_decode_round_trip()
    {
        var manifest = Sample();
        Assert.True(manifest.Verify());
        Assert.True(manifest.VerifyFrom(_publisher.PeerId));
        Assert.False(manifest.VerifyFrom(_other.PeerId));

        var decoded = Manifest.Decode(manifest.Encode());
        Assert.True(decoded.Verify());
        Assert.Equal("holiday photos.tar", decoded.Name);
        Assert.Equal(107_374_182_400, decoded.Size);
        Assert.Equal(ChunkLayout.DefaultChunkSize, decoded.ChunkSize);
        Assert.Equal(102_400, decoded.ChunkCount);
        Assert.Equal(SomeId(), decoded.ContentId);
        Assert.Equal(_publisher.PeerId, decoded.Publisher);
        Assert.Equal(Created, decoded.Created);
        Assert.True(decoded.Encoded.SequenceEqual(manifest.Encoded));
        Assert.True(manifest.Encoded.Length < 410, "a 100 GB file's manifest stays small");
    }

    [Fact]
    public void Manifest_from_an_indexed_tree_carries_its_layout()
    {
        var data = MerkleTestData.RandomData(100_000, 1);
        var tree = MerkleTestData.BuildInMemory(data, ChunkLayout.MinChunkSize);
        var manifest = Manifest.Create(_publisher, tree, "data.bin", Created);
        Assert.Equal(tree.ContentId, manifest.ContentId);
        Assert.Equal(100_000, manifest.Size);
        Assert.Equal(ChunkLayout.MinChunkSize, manifest.ChunkSize);
        Assert.True(Manifest.Decode(manifest.Encoded).Verify());
    }

    [Fact]
    public void Every_flipped_bit_is_rejected_by_decode_or_verify()
    {
        var encoded = Sample("a.txt").Encode();
        for (var i = 0; i < encoded.Length; i++)
        {
            for (var bit = 0; bit < 8; bit++)
            {
                var tampered = (byte[])encoded.Clone();
                tampered[i] ^= (byte)(1 << bit);
                try
                {
                    Assert.False(Manifest.Decode(tampered).Verify(), $"byte {i} bit {bit}");
                }
                catch (SecureMeshException e)
                {
                    Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
                }
            }
        }
    }

    [Fact]
    public void Signature_by_another_key_fails()
    {
        // Build a manifest claiming _publisher but signed by _other.
        var encoded = Manifest.Create(_other, "x", 5, ChunkLayout.DefaultChunkSize, SomeId(), Created).Encode();
        var keyOffset = 1 + 2 + 1 + 8 + 4 + 32;
        _publisher.PublicKey.CopyTo(encoded.AsSpan(keyOffset));
        var forged = Manifest.Decode(encoded);
        Assert.Equal(_publisher.PeerId, forged.Publisher);
        Assert.False(forged.Verify());
    }

    [Fact]
    public void Signature_covers_the_domain_prefix()
    {
        // A bare signature over the body (no "securemesh-manifest-v1:" prefix) must not verify.
        var encoded = Sample("b").Encode();
        var body = encoded.AsSpan(0, encoded.Length - 64);
        _publisher.Sign(body, encoded.AsSpan(encoded.Length - 64));
        Assert.False(Manifest.Decode(encoded).Verify());
    }

    [Fact]
    public void Truncated_or_extended_encodings_fail_with_protocol()
    {
        var encoded = Sample().Encode();
        for (var length = 0; length < encoded.Length; length++)
        {
            var e = Assert.Throws<SecureMeshException>(() => Manifest.Decode(encoded.AsSpan(0, length)));
            Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        }
        Assert.Equal(SecureMeshErrorKind.Protocol,
            Assert.Throws<SecureMeshException>(() => Manifest.Decode([.. encoded, 0])).Kind);
    }

    [Fact]
    public void Random_garbage_fails_with_protocol_only()
    {
        var random = new Random(1234);
        for (var i = 0; i < 5000; i++)
        {
            var garbage = new byte[random.Next(0, 500)];
            random.NextBytes(garbage);
            if (garbage.Length > 0 && random.Next(2) == 0)
            {
                garbage[0] = Manifest.Version;
            }
            try
            {
                Assert.False(Manifest.Decode(garbage).Verify());
            }
            catch (SecureMeshException e)
            {
                Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
            }
        }
    }

    [Fact]
    public void Hostile_field_values_are_rejected()
    {
        var encoded = Sample("n").Encode();
        var nameLength = 1;
        void Expect(byte[] bytes) => Assert.Equal(SecureMeshErrorKind.Protocol,
            Assert.Throws<SecureMeshException>(() => Manifest.Decode(bytes)).Kind);

        var bad = (byte[])encoded.Clone();
        bad[0] = 2;
        Expect(bad);

        bad = (byte[])encoded.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(bad.AsSpan(1), 0xFFFF);
        Expect(bad);

        bad = (byte[])encoded.Clone();
        bad[3] = 0xFF; // invalid UTF-8
        Expect(bad);

        bad = (byte[])encoded.Clone();
        BinaryPrimitives.WriteUInt64BigEndian(bad.AsSpan(3 + nameLength), ulong.MaxValue);
        Expect(bad);

        bad = (byte[])encoded.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(bad.AsSpan(3 + nameLength + 8), 1000);
        Expect(bad);

        bad = (byte[])encoded.Clone();
        BinaryPrimitives.WriteInt64BigEndian(bad.AsSpan(3 + nameLength + 8 + 4 + 32 + 32), long.MaxValue);
        Expect(bad);
    }

    [Fact]
    public void Create_caps_name_length_and_checks_fields()
    {
        Assert.True(Sample(new string('é', 127)).Verify()); // 254 bytes
        Assert.True(Sample(new string('x', 255)).Verify());
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => Sample(new string('x', 256))).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => Sample(new string('é', 128))).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => Sample("")).Kind);
        Assert.Throws<SecureMeshException>(() => Manifest.Create(_publisher, "x", -1, ChunkLayout.DefaultChunkSize, SomeId(), Created));
        Assert.Throws<SecureMeshException>(() => Manifest.Create(_publisher, "x", 1, 12345, SomeId(), Created));
    }
}
