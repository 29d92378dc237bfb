"""LeNet-5 on MNIST with the Python API, written as one would in PyTorch: python examples/train_lenet_mnist.py"""
import minicnn as mc
import minicnn.functional as F
from minicnn import optim
from minicnn.data import MNIST, DataLoader, transforms as T
from minicnn.models import lenet5

mc.manual_seed(0)
normalize = T.Normalize((0.1307,), (0.3081,))
train_loader = DataLoader(MNIST(train=True, transform=normalize), batch_size=64, shuffle=True)
test_loader = DataLoader(MNIST(train=False, transform=normalize), batch_size=1000)

model = lenet5()
optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for epoch in range(3):
    model.train()
    for images, labels in train_loader:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with mc.no_grad():
        correct = sum(int((model(x).numpy().argmax(1) == y.numpy()).sum()) for x, y in test_loader)
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}, test accuracy {correct / 100:.2f}%")
mc.save(model.state_dict(), "lenet5_mnist.npz")
