"""The test bed: real servers started on loopback for the tests and the demo.

Rule: nothing here is a fake. kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok,
MinIO and fake-gcs-server are the real programs, built from their Go modules by ``hack/testbin.sh``
(or taken from ``KUBEBUILDER_ASSETS``) and cached outside the work tree.
"""
